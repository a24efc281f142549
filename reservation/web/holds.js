// The buyer's holds on the storefront: each with its time left, Pay (on to Stripe's page) and
// Give back; read again from the service as the page asks (a payment or a lapse shows up).
"use strict";

window.Holds = (() => {
  const { api, el, buyer, holds, serverNow, formatLeft, describeItems } = window.Shop;

  // names: sku -> name; announce(text) for screen readers; changed() after a hold ended here.
  function create({ names, announce, changed }) {
    const holdNodes = new Map(); // reservation id -> {node, left, state, payButton, …, warned}
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
      await changed();
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
      await changed();
    }

    // The hold just made: its Pay button takes the focus.
    function focusPay(reservationId) {
      const entry = holdNodes.get(reservationId);
      if (entry) entry.payButton.focus();
    }

    return { render: renderHolds, tick, sync: syncHolds, focusPay };
  }

  return { create };
})();
