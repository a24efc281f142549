// The storefront: live availability, Buy (a hold), the hold's countdown, Pay (checkout).
"use strict";

(() => {
  const { api, money, el, newKey, customerId, buyer, holds, serverNow, formatLeft, describeItems } = window.Shop;
  const REFRESH_MS = 2000;
  const MAX_CHOICE = 10; // the most units the quantity menu offers
  const cards = new Map(); // sku -> {view, nodes}
  const names = new Map(); // sku -> name
  const holdNodes = new Map(); // reservation id -> {node, left, warned}
  const announcer = document.getElementById("announcer");

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
      stock: el("p", { class: "stock", id: id("stock"), "data-field": "stock" }),
      meter: el("div", { class: "meter", "aria-hidden": "true" }, el("span")),
      limit: el("p", { class: "limit" }),
      select: el("select", { id: id("quantity"), name: "quantity" }),
      button: el("button", { type: "submit", class: "primary", "aria-describedby": `${id("name")} ${id("stock")}` }, "Buy"),
      message: el("p", { class: "message", id: id("message"), role: "status", "aria-live": "polite" }),
    };
    const label = el("label", { for: id("quantity") }, "Quantity", nodes.select);
    const form = el("form", { class: "buy", "aria-label": `Buy ${view.name}` }, label, nodes.button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      buy(sku, Number(nodes.select.value));
    });
    nodes.card = el("li", { class: "product", "data-sku": sku },
      nodes.name, nodes.price, nodes.stock, nodes.meter, nodes.limit, form, nodes.message);
    return nodes;
  }

  function updateCard(nodes, view, busy) {
    names.set(view.sku, view.name);
    nodes.name.textContent = view.name;
    nodes.price.textContent = money(view.price, view.currency);
    const soldOut = view.available <= 0;
    nodes.card.classList.toggle("soldout", soldOut);
    nodes.card.dataset.available = String(view.available);
    if (soldOut) {
      nodes.stock.textContent = view.reserved > 0
        ? `Sold out (${view.reserved} held in carts may come back)`
        : "Sold out";
    } else {
      const held = view.reserved > 0 ? `, ${view.reserved} held in carts` : "";
      nodes.stock.textContent = `${view.available} of ${view.stock} left${held}`;
    }
    const share = view.stock > 0 ? (100 * view.available) / view.stock : 0;
    nodes.meter.firstChild.style.width = `${share}%`;
    nodes.limit.textContent = view.max_per_customer ? `At most ${view.max_per_customer} per customer` : "";
    const most = Math.max(1, Math.min(view.available, view.max_per_customer || MAX_CHOICE, MAX_CHOICE));
    if (nodes.select.options.length !== most) {
      const chosen = Math.min(Number(nodes.select.value) || 1, most);
      nodes.select.replaceChildren(...Array.from({ length: most }, (_, i) => el("option", { value: i + 1 }, String(i + 1))));
      nodes.select.value = String(chosen);
    }
    nodes.select.disabled = soldOut;
    nodes.button.disabled = soldOut || busy;
    nodes.button.textContent = soldOut ? "Sold out" : "Buy";
  }

  async function refreshProducts() {
    const answer = await api("GET", "/v1/products");
    const state = document.getElementById("products-state");
    if (!answer.ok) {
      state.textContent = "The products cannot be loaded right now; retrying…";
      return;
    }
    const list = document.getElementById("products");
    const seen = new Set();
    for (const view of answer.body.data) {
      seen.add(view.sku);
      let card = cards.get(view.sku);
      if (!card) {
        card = { nodes: createCard(view), busy: false };
        cards.set(view.sku, card);
        list.append(card.nodes.card);
      }
      card.view = view;
      updateCard(card.nodes, view, card.busy);
    }
    for (const [sku, card] of cards) {
      if (!seen.has(sku)) {
        card.nodes.card.remove();
        cards.delete(sku);
      }
    }
    state.textContent = cards.size ? "" : "Nothing on sale yet.";
    state.hidden = cards.size > 0;
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
    if (answer.status === 429) {
      const wait = Number(answer.retryAfter) || 1;
      return `Too many tries: try again in ${wait} s.`;
    }
    if (answer.status === 503) {
      const wait = Number(answer.retryAfter) || 1;
      return `The shop is very busy: try again in ${wait} s.`;
    }
    if (answer.status === 0) return answer.body.message;
    return `Could not hold ${quantity}: ${(answer.body && answer.body.message) || answer.status}.`;
  }

  async function buy(sku, quantity) {
    const card = cards.get(sku);
    if (vouching && !buyer.get()) {
      card.nodes.message.className = "message bad";
      card.nodes.message.textContent = "Type your name above first: the shop holds units for a named buyer.";
      who("name").focus();
      return;
    }
    card.busy = true;
    card.nodes.button.disabled = true;
    card.nodes.message.className = "message";
    card.nodes.message.textContent = "Holding…";
    const answer = await api("POST", "/v1/reservations",
      { items: [{ sku, quantity }], customer_id: customerId() },
      { "Idempotency-Key": newKey(), ...(await buyer.headers()) });
    card.busy = false;
    if (answer.ok) {
      const reservation = answer.body;
      const list = holds.all();
      list.push({ reservation_id: reservation.id, items: reservation.items, expires_at: reservation.expires_at });
      holds.save(list);
      card.nodes.message.className = "message good";
      card.nodes.message.textContent = "Held for you: pay above before the time runs out.";
      renderHolds();
      const left = formatLeft(Date.parse(reservation.expires_at) - serverNow());
      announce(`${describeItems(reservation.items, names)} held for you for ${left}.`);
      const pay = holdNodes.get(reservation.id);
      if (pay) pay.payButton.focus();
    } else {
      card.nodes.message.className = "message bad";
      card.nodes.message.textContent = refusal(answer, quantity);
      if (TOKEN_REFUSALS.has(answer.body && answer.body.error)) {
        askWho("The shop could not vouch for you: type your name again.");
      }
    }
    await refreshProducts();
  }

  // ---- holds --------------------------------------------------------------------------

  const FAREWELL_MS = 8000;
  const leaving = new Map(); // reservation id -> until when its ended hold's line stays

  function renderHolds() {
    const list = holds.all();
    const container = document.getElementById("hold-list");
    const live = new Set(list.map((hold) => hold.reservation_id));
    const now = Date.now();
    for (const [id, entry] of holdNodes) {
      // A hold that ended keeps its last line ("paid", "lapsed"…) for a while: long enough
      // to read, whatever redraws the list meanwhile.
      if (!live.has(id) && !((leaving.get(id) || 0) > now)) {
        entry.node.remove();
        holdNodes.delete(id);
        leaving.delete(id);
      }
    }
    for (const hold of list) {
      if (holdNodes.has(hold.reservation_id)) continue;
      const what = el("strong", {}, describeItems(hold.items, names));
      const left = el("span", { class: "left", role: "timer", "aria-label": "time left" });
      const state = el("span", { class: "hold-state" }, " left");
      const payButton = el("button", { type: "button", class: "primary" }, "Pay");
      const giveBack = el("button", { type: "button" }, "Give back");
      const message = el("p", { class: "message bad", role: "status" });
      const node = el("li", { class: "hold", "data-reservation": hold.reservation_id },
        el("p", {}, what, " — ", left, state), payButton, giveBack, message);
      payButton.addEventListener("click", () => pay(hold.reservation_id, payButton));
      giveBack.addEventListener("click", () => release(hold.reservation_id, giveBack));
      holdNodes.set(hold.reservation_id, { node, left, state, payButton, giveBack, message, warned: false });
      container.append(node);
    }
    document.getElementById("holds").hidden = holdNodes.size === 0;
    tick();
  }

  function showHoldMessage(reservationId, text) {
    const entry = holdNodes.get(reservationId);
    if (entry) entry.message.textContent = text;
  }

  function dropHold(reservationId, text) {
    holds.forget((hold) => hold.reservation_id === reservationId);
    const entry = holdNodes.get(reservationId);
    if (entry && text) {
      entry.state.textContent = "";
      entry.left.textContent = "";
      entry.node.querySelector("strong").after(` — ${text}`);
      entry.payButton.remove();
      entry.giveBack.remove();
      leaving.set(reservationId, Date.now() + FAREWELL_MS);
      window.setTimeout(renderHolds, FAREWELL_MS + 50);
    } else {
      renderHolds();
    }
    if (text) announce(text);
  }

  function tick() {
    for (const hold of holds.all()) {
      const entry = holdNodes.get(hold.reservation_id);
      if (!entry || !entry.payButton.isConnected) continue;
      if (hold.status === "awaiting_payment") {
        entry.left.textContent = "";
        entry.state.textContent = " — payment pending";
        continue;
      }
      const ms = Date.parse(hold.expires_at) - serverNow();
      entry.left.textContent = formatLeft(ms);
      entry.node.classList.toggle("lapsing", ms < 30000);
      if (ms < 30000 && !entry.warned && ms > 0) {
        entry.warned = true;
        announce(`Your hold of ${describeItems(hold.items, names)} lapses in ${Math.ceil(ms / 1000)} seconds.`);
      }
      if (ms <= 0) dropHold(hold.reservation_id, "the hold lapsed: the units went back on sale.");
    }
  }

  async function syncHolds() {
    for (const hold of holds.all()) {
      const path = `/v1/reservations/${encodeURIComponent(hold.reservation_id)}`;
      const answer = await api("GET", path, undefined, await buyer.headers());
      if (answer.status === 404) {
        dropHold(hold.reservation_id, null);
        continue;
      }
      if (!answer.ok) continue;
      const status = answer.body.status;
      if (status === "committed") dropHold(hold.reservation_id, "paid: the units are yours.");
      else if (status === "released") dropHold(hold.reservation_id, "given back.");
      else if (status === "expired") dropHold(hold.reservation_id, "the hold lapsed: the units went back on sale.");
      else {
        const list = holds.all();
        for (const stored of list) {
          if (stored.reservation_id === hold.reservation_id) {
            stored.expires_at = answer.body.expires_at;
            stored.status = status;
            stored.session_id = answer.body.checkout_session_id || stored.session_id;
          }
        }
        holds.save(list);
      }
    }
  }

  async function pay(reservationId, button) {
    button.disabled = true;
    button.textContent = "Opening checkout…";
    const answer = await api("POST", "/v1/checkout", { reservation_id: reservationId }, await buyer.headers());
    if (answer.ok) {
      const list = holds.all();
      for (const stored of list) {
        if (stored.reservation_id === reservationId) stored.session_id = answer.body.checkout_session_id;
      }
      holds.save(list);
      window.location.assign(answer.body.url);
      return;
    }
    button.disabled = false;
    button.textContent = "Pay";
    const error = answer.body && answer.body.error;
    const why = (answer.body && answer.body.message) || `error ${answer.status}`;
    if (error === "reservation_not_held" || error === "not_found") {
      dropHold(reservationId, "this hold is no longer held: the units went back on sale.");
      return;
    }
    // A checkout Stripe could not make gives its hold back: say whether this one is left.
    const wait = answer.status === 503 ? ` Try again in ${Number(answer.retryAfter) || 1} s.` : "";
    const path = `/v1/reservations/${encodeURIComponent(reservationId)}`;
    const check = await api("GET", path, undefined, await buyer.headers());
    const live = check.ok && ["held", "awaiting_payment"].includes(check.body.status);
    if (live) {
      showHoldMessage(reservationId, `Checkout failed (${why}); the units are still held for you.${wait}`);
    } else {
      dropHold(reservationId, `checkout failed (${why}), so the units went back on sale.${wait}`);
    }
    await refreshProducts();
  }

  async function release(reservationId, button) {
    button.disabled = true;
    const path = `/v1/reservations/${encodeURIComponent(reservationId)}`;
    const answer = await api("DELETE", path, undefined, await buyer.headers());
    if (answer.ok || answer.status === 404) {
      dropHold(reservationId, "given back: the units are on sale again.");
    } else if (answer.body && answer.body.error === "already_committed") {
      dropHold(reservationId, "already paid: the units are yours.");
    } else {
      button.disabled = false;
      showHoldMessage(reservationId, "Could not give it back right now: try again.");
    }
    await refreshProducts();
  }

  // ---- the loop ---------------------------------------------------------------------

  async function refresh() {
    await Promise.all([refreshProducts(), syncHolds()]);
    renderHolds();
  }

  who("form").addEventListener("submit", signIn);
  who("change").addEventListener("click", () => {
    buyer.forget();
    showWho();
    who("name").focus();
  });
  buyer.offered().then((offered) => {
    vouching = offered;
    showWho();
  });
  refresh();
  window.setInterval(() => {
    if (!document.hidden) refresh();
  }, REFRESH_MS);
  window.setInterval(tick, 500);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) refresh(); // back from the pay page (the page came from the cache)
  });
})();
