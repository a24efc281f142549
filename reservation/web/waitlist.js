// The waiting list of a sold-out product, seen from one browser: join (POST /v1/waitlist/{sku}),
// the place in line (GET /v1/waitlist/{sku}/{customer}), leave (DELETE), and the offer when a
// unit comes back. The shop's backend hears of an offer by the service's webhook and tells the
// page (GET /shop/offers, harness/shop_offers.py); the entry reading `offered` tells it too.
// Pay checks the offer out by its reservation id, as a hold. The SKUs joined are kept in
// localStorage with the buyer they were joined for, so a reload keeps the place.
"use strict";

window.Waitlist = (() => {
  const { api, el, buyer, customerId, readJson, serverNow, formatLeft } = window.Shop;
  const KEY = "shop.waitlists";
  const READ_MS = 3000; // the entry (its place) is read again this often while joined
  const SHOP_MS = 2000; // the shop's backend is asked for offers this often while joined

  // sku -> the customer id it was joined for (another buyer's entry does not count).
  const joined = {
    all: () => readJson(localStorage, KEY, {}),
    has: (sku) => joined.all()[sku] === customerId(),
    any: () => Object.values(joined.all()).includes(customerId()),
    set(sku, on) {
      const all = joined.all();
      if (on) all[sku] = customerId();
      else delete all[sku];
      localStorage.setItem(KEY, JSON.stringify(all));
    },
  };

  // The shop backend's news for this buyer, shared by every card: {sku -> latest offer}.
  const shop = { offered: null, offers: new Map(), listeners: new Set() };

  async function askShop() {
    if (shop.offered === null) {
      const about = await api("GET", "/shop");
      shop.offered = about.ok && Boolean(about.body && about.body.offers);
    }
    if (shop.offered && buyer.get() && joined.any()) {
      const answer = await api("GET", "/shop/offers", undefined, await buyer.headers(), "no-cache");
      if (answer.ok) {
        shop.offers = new Map(answer.body.offers.map((offer) => [offer.sku, offer]));
        for (const listener of shop.listeners) listener();
      }
    }
    window.setTimeout(askShop, SHOP_MS);
  }

  function ordinal(n) {
    const tens = n % 100;
    const suffix = tens >= 11 && tens <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th");
    return `${n}${suffix}`;
  }

  function units(quantity) {
    return quantity === 1 ? "A unit is" : `${quantity} units are`;
  }

  // The offer this page knows of for `entry` (the service's word) and `news` (the shop's).
  function offerOf(entry, news) {
    if (entry && entry.status === "offered" && entry.offer) return { ...entry.offer, quantity: entry.quantity, status: "offered" };
    if (news && (!entry || !["bought", "left"].includes(entry.status))) {
      if (entry && entry.offer && entry.offer.reservation_id !== news.reservation_id) return null; // an older offer
      return news;
    }
    return null;
  }

  // One card's part: {node, update(view), tick(), read()}. `named()` says whether the page
  // knows its buyer (asking for a name otherwise); `announce(text)` speaks.
  function attach(sku, { named, announce }) {
    const id = (part) => `${part}-${sku}`;
    const nodes = {
      state: el("p", { class: "waitlist-state", id: id("waitlist-state"), role: "status", "aria-live": "polite" }),
      left: el("p", { class: "waitlist-left", role: "timer", "aria-label": "offer time left" }),
      join: el("button", { type: "button", "aria-describedby": id("name") }, "Join the waiting list"),
      leave: el("button", { type: "button", "aria-describedby": id("name") }, "Leave"),
      pay: el("button", { type: "button", class: "primary", "aria-describedby": `${id("name")} ${id("waitlist-state")}` }, "Pay"),
    };
    const node = el("div", { class: "waitlist", "data-field": "waitlist" },
      nodes.state, nodes.left, el("p", { class: "actions" }, nodes.join, nodes.leave, nodes.pay));
    let view = null;
    let entry = null; // the service's view of this buyer's entry, or null
    let busy = false;
    let reading = false;
    let rereading = false;
    let said = "";

    function say(text) {
      if (nodes.state.textContent !== text) nodes.state.textContent = text;
    }

    function draw() {
      if (!view) return;
      const offer = offerOf(entry, joined.has(sku) ? shop.offers.get(sku) : null);
      const now = serverNow();
      const live = offer && offer.status === "offered" && Date.parse(offer.expires_at) > now;
      const ended = Boolean(view.sale_ends_at) && Date.parse(view.sale_ends_at) <= now;
      const soldOut = view.available <= 0 && !ended;
      const status = live ? "offered" : entry ? entry.status : offer && offer.status === "lapsed" ? "lapsed" : "";
      node.dataset.status = status;
      node.hidden = !soldOut && !status;
      nodes.left.hidden = !live;
      nodes.pay.hidden = !live;
      nodes.leave.hidden = status !== "waiting";
      nodes.join.hidden = !soldOut || ["waiting", "offered"].includes(status);
      nodes.join.textContent = status === "lapsed" ? "Join the waiting list again" : "Join the waiting list";
      for (const button of [nodes.join, nodes.leave, nodes.pay]) button.disabled = busy;
      if (live) {
        nodes.left.textContent = `Held for you for ${formatLeft(Date.parse(offer.expires_at) - now)}`;
        say(`${units(offer.quantity)} waiting for you: pay before the time runs out.`);
        if (said !== offer.reservation_id) {
          said = offer.reservation_id;
          announce(`${units(offer.quantity)} waiting for you: press Pay on ${view.name}.`);
        }
      } else if (status === "waiting") {
        say(`You are ${ordinal(entry.position)} in line for ${entry.quantity === 1 ? "a unit" : `${entry.quantity} units`}.`);
      } else if (status === "offered" || status === "lapsed") {
        say("Your offer lapsed unbought: the unit went to the next in line.");
        if (status === "offered") reread(); // lapsed by this page's clock: the service says
      } else if (status === "bought") {
        say("Paid: the unit from the waiting list is yours.");
      } else {
        say(view.waitlist > 0 ? `${view.waitlist} waiting in line.` : "Units that come back go to the waiting list first.");
      }
    }

    function reread() {
      if (rereading) return;
      rereading = true;
      window.setTimeout(async () => {
        await read();
        rereading = false;
      }, 1000);
    }

    async function read() {
      if (reading || !joined.has(sku)) return;
      reading = true;
      const path = `/v1/waitlist/${encodeURIComponent(sku)}/${encodeURIComponent(customerId())}`;
      const answer = await api("GET", path, undefined, await buyer.headers(), "no-cache");
      reading = false;
      if (answer.ok) entry = answer.body;
      else if (answer.status === 404) {
        joined.set(sku, false);
        entry = null;
      } // else: no news (busy, unreachable): the last state stands
      if (entry && ["left", "bought"].includes(entry.status)) joined.set(sku, false);
      draw();
    }

    async function act(run) {
      busy = true;
      draw();
      const text = await run();
      busy = false;
      if (text) say(text);
      draw();
    }

    nodes.join.addEventListener("click", () => act(async () => {
      if (!named()) return "";
      const path = `/v1/waitlist/${encodeURIComponent(sku)}`;
      const answer = await api("POST", path, { quantity: 1, customer_id: customerId() }, await buyer.headers());
      if (!answer.ok) return refused(answer);
      entry = answer.body;
      joined.set(sku, true);
      announce(`You are ${ordinal(entry.position)} in line for ${view.name}.`);
      return "";
    }));

    nodes.leave.addEventListener("click", () => act(async () => {
      const path = `/v1/waitlist/${encodeURIComponent(sku)}/${encodeURIComponent(customerId())}`;
      const answer = await api("DELETE", path, undefined, await buyer.headers());
      if (!answer.ok && answer.status !== 404) return `Could not leave right now (${answer.status}): try again.`;
      joined.set(sku, false);
      entry = null;
      announce(`You left the waiting list for ${view.name}.`);
      return "";
    }));

    nodes.pay.addEventListener("click", () => act(async () => {
      const offer = offerOf(entry, shop.offers.get(sku));
      if (!offer) return "";
      const body = { reservation_id: offer.reservation_id };
      const answer = await api("POST", "/v1/checkout", body, await buyer.headers());
      if (answer.ok) {
        window.location.assign(answer.body.url);
        return "Opening checkout…";
      }
      await read();
      return `Checkout failed: ${(answer.body && answer.body.message) || answer.status}.`;
    }));

    function refused(answer) {
      const error = answer.body && answer.body.error;
      if (error === "on_sale") return "It is on sale again: press Buy.";
      if (error === "waitlist_closed") return "The waiting list is closed.";
      if (error === "customer_limit_exceeded") return "You hold or bought as many as a customer may.";
      return `Could not join: ${(answer.body && answer.body.message) || answer.status}.`;
    }

    shop.listeners.add(draw);
    read();
    window.setInterval(() => {
      if (!document.hidden) read();
    }, READ_MS);
    return {
      node,
      update(next) {
        view = next;
        draw();
      },
      tick: draw,
      read() {
        entry = null;
        return read();
      },
    };
  }

  askShop();
  return { attach, ordinal };
})();
