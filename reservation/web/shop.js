// The storefront: live availability (stock.js), the countdown to a sale's start, the waiting
// room's line (line.js), Buy (a hold), the holds' countdowns and Pay (holds.js), and a sold-out
// product's waiting list (waitlist.js).
"use strict";

(() => {
  const { api, money, el, newKey, customerId, buyer, holds, serverNow, formatLeft, describeItems } = window.Shop;
  const { Sale, Line, StockFeed, Holds, Waitlist } = window;
  const REFRESH_MS = 2000; // holds are read again this often; products too, without streams
  const TICK_MS = 250;
  const CONFIRM_MS = 500; // how often a page asks whether a sale it saw start has opened
  const MAX_CHOICE = 10; // the most units the quantity menu offers
  const cards = new Map(); // sku -> {view, nodes}
  const names = new Map(); // sku -> name
  const announcer = document.getElementById("announcer");
  const feed = StockFeed.create(onStock);
  const held = Holds.create({ names, announce, changed: () => refreshProducts(true) });

  function announce(text) {
    announcer.textContent = "";
    window.setTimeout(() => { announcer.textContent = text; }, 50);
  }

  // ---- who is buying ----------------------------------------------------------------

  // The refusals of a buyer the shop's backend did not vouch for (or not any more).
  const TOKEN_REFUSALS = new Set(["customer_token_required", "invalid_customer_token", "customer_mismatch"]);
  let vouching = false; // a shop's backend hands out customer tokens on this origin
  const who = (part) => document.getElementById(`who-${part}`);

  function showWho() {
    const known = buyer.get();
    document.getElementById("who").hidden = !vouching;
    who("form").hidden = Boolean(known);
    who("known").hidden = !known;
    who("shown").textContent = known ? known.name : "";
  }

  function askWho(text) {
    buyer.forget();
    showWho();
    who("message").className = "message bad";
    who("message").textContent = text;
    who("name").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const answer = await buyer.signIn(who("name").value);
    showWho();
    if (answer.ok) {
      who("message").className = "message good";
      who("message").textContent = `Welcome, ${answer.body.name}: press Buy on anything below.`;
    } else {
      who("message").className = "message bad";
      who("message").textContent = (answer.body && answer.body.message) || `The shop cannot say who you are (${answer.status}).`;
    }
  }

  // ---- products ---------------------------------------------------------------------

  function createCard(view) {
    const sku = view.sku;
    const id = (part) => `${part}-${sku}`;
    const nodes = {
      name: el("h3", { id: id("name") }),
      price: el("p", { class: "price" }),
      when: el("p", { class: "when", id: id("when"), "data-field": "when" }),
      stock: el("p", { class: "stock", id: id("stock"), "data-field": "stock" }),
      meter: el("div", { class: "meter", "aria-hidden": "true" }, el("span")),
      limit: el("p", { class: "limit" }),
      line: el("p", { class: "line", id: id("line"), "data-field": "line" }),
      select: el("select", { id: id("quantity"), name: "quantity" }),
      button: el("button", { type: "submit", class: "primary", "aria-describedby": `${id("name")} ${id("stock")} ${id("when")}` }, "Buy"),
      message: el("p", { class: "message", id: id("message"), role: "status", "aria-live": "polite" }),
    };
    const label = el("label", { for: id("quantity") }, "Quantity", nodes.select);
    const form = el("form", { class: "buy", "aria-label": `Buy ${view.name}` }, label, nodes.button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const card = cards.get(sku);
      if (card.action === "join") join(sku);
      else if (card.action === "buy") buy(sku, Number(nodes.select.value));
    });
    nodes.waitlist = Waitlist.attach(sku, { named: () => named(cards.get(sku)), announce });
    nodes.card = el("li", { class: "product", "data-sku": sku },
      nodes.name, nodes.price, nodes.when, nodes.stock, nodes.meter, nodes.limit, nodes.line, form,
      nodes.waitlist.node, nodes.message);
    return nodes;
  }

  function stockText(view) {
    // `reserved` is null once the stream moved `available`: the stream does not say it.
    const held = view.reserved === null ? 0 : view.reserved;
    if (view.available <= 0) return held > 0 ? `Sold out (${held} held in carts may come back)` : "Sold out";
    return `${view.available} of ${view.stock} left${held > 0 ? `, ${held} held in carts` : ""}`;
  }

  function updateCard(card) {
    const { nodes, view } = card;
    names.set(view.sku, view.name);
    nodes.name.textContent = view.name;
    nodes.price.textContent = money(view.price, view.currency);
    const soldOut = view.available <= 0;
    nodes.card.classList.toggle("soldout", soldOut);
    nodes.card.dataset.available = String(view.available);
    nodes.stock.textContent = stockText(view);
    const share = view.stock > 0 ? (100 * Math.min(view.available, view.stock)) / view.stock : 0;
    nodes.meter.firstChild.style.width = `${share}%`;
    nodes.limit.textContent = view.max_per_customer ? `At most ${view.max_per_customer} per customer` : "";
    const most = Math.max(1, Math.min(view.available, view.max_per_customer || MAX_CHOICE, MAX_CHOICE));
    if (nodes.select.options.length !== most) {
      const chosen = Math.min(Number(nodes.select.value) || 1, most);
      nodes.select.replaceChildren(...Array.from({ length: most }, (_, i) => el("option", { value: i + 1 }, String(i + 1))));
      nodes.select.value = String(chosen);
    }
    nodes.select.disabled = soldOut;
    if (view.waiting_room && !card.line) card.line = followLine(view.sku);
    nodes.waitlist.update(view);
    tickCard(card);
  }

  // The parts of a card that move with the clock: the countdown, the turn's time left, the
  // button (enabled when the sale opens, without a reload).
  function tickCard(card) {
    const { nodes, view } = card;
    const now = serverNow();
    const when = Sale.when(view, now);
    if (nodes.when.textContent !== when.text) nodes.when.textContent = when.text;
    nodes.when.hidden = !when.text;
    nodes.card.dataset.phase = when.phase;
    const ticket = view.waiting_room && card.line ? card.line.state() : null;
    const line = Sale.lineText(ticket, view, now);
    if (nodes.line.textContent !== line) nodes.line.textContent = line;
    nodes.line.hidden = !line;
    nodes.card.dataset.line = ticket ? ticket.status : "";
    const offer = Sale.button(view, ticket, now);
    card.action = offer.action;
    if (nodes.button.textContent !== offer.text) nodes.button.textContent = offer.text;
    nodes.button.disabled = !offer.enabled || card.busy;
    if (when.phase === "opening") confirmOpening(card);
    if (ticket && ticket.status === "admitted" && !ticket.used && Date.parse(ticket.admission_expires_at) <= now) {
      rereadTicket(card);
    }
    nodes.waitlist.tick();
  }

  // The start passed by this page's clock; the service's (Redis's) decides. A streamed
  // product hears of it from its stream (`on_sale`) within a quarter of a second: no read, so
  // every open page asking at the same instant is no crowd. Another is read every half second
  // until the service agrees.
  function confirmOpening(card) {
    if (card.confirming || feed.streaming(card.view.sku)) return;
    card.confirming = true;
    window.setTimeout(async () => {
      await refreshProduct(card.view.sku, false);
      card.confirming = false;
    }, CONFIRM_MS);
  }

  // The turn ran out by this page's clock: the service says what is left of it.
  function rereadTicket(card) {
    if (card.rereading) return;
    card.rereading = true;
    window.setTimeout(async () => {
      await card.line.read();
      card.rereading = false;
    }, CONFIRM_MS);
  }

  function followLine(sku) {
    const line = Line.follow(sku, (ticket) => {
      const card = cards.get(sku);
      if (!card) return;
      if (ticket && ticket.status === "admitted" && !ticket.used && card.announced !== ticket.ticket) {
        card.announced = ticket.ticket;
        announce(`It's your turn for ${card.view.name}: press Buy.`);
      }
      tickCard(card);
    }, (answer) => {
      const card = cards.get(sku);
      card.nodes.message.className = "message bad";
      card.nodes.message.textContent = refusal(answer, 0);
      if (answer.body && answer.body.error === "no_waiting_room") refreshProduct(sku, true);
    });
    line.read();
    return line;
  }

  function show(view) {
    let card = cards.get(view.sku);
    if (!card) {
      card = { nodes: createCard(view), busy: false, line: null };
      cards.set(view.sku, card);
      document.getElementById("products").append(card.nodes.card);
    }
    card.view = view;
    updateCard(card);
  }

  // Every product; `fresh`: not an answer the browser kept (after the page's own change).
  async function refreshProducts(fresh) {
    const answer = await api("GET", "/v1/products", undefined, undefined, fresh ? "no-cache" : undefined);
    const state = document.getElementById("products-state");
    if (!answer.ok) {
      state.textContent = "The products cannot be loaded right now; retrying…";
      return;
    }
    const seen = new Set();
    for (const view of answer.body.data) {
      seen.add(view.sku);
      show(view);
    }
    for (const [sku, card] of cards) {
      if (!seen.has(sku)) {
        card.nodes.card.remove();
        cards.delete(sku);
      }
    }
    state.textContent = cards.size ? "" : "Nothing on sale yet.";
    state.hidden = cards.size > 0;
    feed.watch([...cards.keys()]);
  }

  async function refreshProduct(sku, fresh) {
    const path = `/v1/products/${encodeURIComponent(sku)}`;
    const answer = await api("GET", path, undefined, undefined, fresh ? "no-cache" : undefined);
    if (answer.ok && cards.has(sku)) show(answer.body);
  }

  // A stream's event: the product's available units and whether it is on sale, now.
  function onStock(data) {
    const card = cards.get(data.sku);
    if (!card || (card.view.available === data.available && card.view.on_sale === data.on_sale)) return;
    const moved = card.view.available !== data.available;
    card.view = { ...card.view, available: data.available, on_sale: data.on_sale, reserved: moved ? null : card.view.reserved };
    updateCard(card);
  }

  function refusal(answer, quantity) {
    const error = (answer.body && answer.body.error) || "";
    const details = (answer.body && answer.body.details) || {};
    if (error === "insufficient_stock") {
      return details.available > 0
        ? `Only ${details.available} left: choose fewer.`
        : "Sold out: someone was faster.";
    }
    if (error === "customer_limit_exceeded") return `At most ${details.limit} per customer.`;
    if (TOKEN_REFUSALS.has(error)) return "Not held: the shop could not say who you are.";
    if (error === "hold_cap_reached") {
      return `You hold as many carts as a customer may (${details.limit}): pay for or give back one first.`;
    }
    if (error === "not_on_sale") {
      const ended = details.ends_at && Date.parse(details.ends_at) <= serverNow();
      return ended ? "The sale has ended." : "Not on sale yet: wait for the start.";
    }
    if (error === "admission_required") return "This product sells through a line: join it first.";
    if (error === "admission_invalid") return "Your turn is over.";
    if (error === "admission_used") return "Your turn was used for a hold already.";
    if (error === "no_waiting_room") return "There is no line for this product any more: press Buy.";
    if (answer.status === 429) {
      const wait = Number(answer.retryAfter) || 1;
      return `Too many tries: try again in ${wait} s.`;
    }
    if (answer.status === 503) {
      const wait = Number(answer.retryAfter) || 1;
      return `The shop is very busy: try again in ${wait} s.`;
    }
    if (answer.status === 0) return answer.body.message;
    const what = quantity ? `hold ${quantity}` : "join the line";
    return `Could not ${what}: ${(answer.body && answer.body.message) || answer.status}.`;
  }

  // A shop's backend vouches for named buyers only: ask for the name first.
  function named(card) {
    if (!vouching || buyer.get()) return true;
    card.nodes.message.className = "message bad";
    card.nodes.message.textContent = "Type your name above first: the shop holds units for a named buyer.";
    who("name").focus();
    return false;
  }

  async function join(sku) {
    const card = cards.get(sku);
    if (!named(card)) return;
    card.busy = true;
    tickCard(card);
    card.nodes.message.className = "message";
    card.nodes.message.textContent = "Joining the line…";
    const answer = await card.line.join();
    card.busy = false;
    card.nodes.message.textContent = answer.ok ? "" : card.nodes.message.textContent;
    tickCard(card);
  }

  async function buy(sku, quantity) {
    const card = cards.get(sku);
    if (!named(card)) return;
    card.busy = true;
    card.nodes.button.disabled = true;
    card.nodes.message.className = "message";
    card.nodes.message.textContent = "Holding…";
    const ticket = card.view.waiting_room && card.line ? card.line.state() : null;
    const admission = ticket && ticket.status === "admitted" ? { admission_token: ticket.admission_token } : {};
    const answer = await api("POST", "/v1/reservations",
      { items: [{ sku, quantity }], customer_id: customerId(), ...admission },
      { "Idempotency-Key": newKey(), ...(await buyer.headers()) });
    card.busy = false;
    const error = answer.body && answer.body.error;
    if (admission.admission_token && (answer.ok || error === "admission_used")) card.line.used(); // one hold a turn
    if (admission.admission_token && error === "admission_invalid") card.line.read(); // lapsed?
    if (answer.ok) {
      const reservation = answer.body;
      const list = holds.all();
      list.push({ reservation_id: reservation.id, items: reservation.items, expires_at: reservation.expires_at });
      holds.save(list);
      card.nodes.message.className = "message good";
      card.nodes.message.textContent = "Held for you: pay above before the time runs out.";
      held.render();
      const left = formatLeft(Date.parse(reservation.expires_at) - serverNow());
      announce(`${describeItems(reservation.items, names)} held for you for ${left}.`);
      held.focusPay(reservation.id);
    } else {
      card.nodes.message.className = "message bad";
      card.nodes.message.textContent = refusal(answer, quantity);
      if (TOKEN_REFUSALS.has(error)) {
        askWho("The shop could not vouch for you: type your name again.");
      }
    }
    await refreshProducts(true);
  }

  // ---- the loop ---------------------------------------------------------------------

  // Products come by their streams; the page reads them itself only for those without one.
  async function refresh(all) {
    const shown = [...cards.keys()];
    // A first read is fresh (no-cache): the streams then tell only of changes of
    // `available`, so a list the browser kept (up to its max-age old) would stay as it was.
    const products = all || !shown.length || feed.polling(shown) ? refreshProducts(all) : null;
    await Promise.all([products, held.sync()]);
    held.render();
  }

  function tickAll() {
    held.tick();
    for (const card of cards.values()) tickCard(card);
  }

  who("form").addEventListener("submit", async (event) => {
    await signIn(event);
    for (const card of cards.values()) { // the buyer's own tickets and waiting lists
      if (card.line) card.line.read();
      card.nodes.waitlist.read();
    }
  });
  who("change").addEventListener("click", () => {
    buyer.forget();
    showWho();
    for (const card of cards.values()) {
      if (card.line) card.line.read();
      card.nodes.waitlist.read();
    }
    who("name").focus();
  });
  buyer.offered().then((offered) => {
    vouching = offered;
    showWho();
  });
  refresh(true);
  window.setInterval(() => {
    if (!document.hidden) refresh(false);
  }, REFRESH_MS);
  window.setInterval(tickAll, TICK_MS);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh(false);
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) refresh(true); // back from the pay page (the page came from the cache)
  });
})();
