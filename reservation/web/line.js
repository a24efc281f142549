// The waiting room's line, seen from one browser: join (POST /v1/queue/{sku}), then read the
// ticket (GET /v1/queue/{sku}/{ticket}) as often as the service says (`poll_after_ms`), until
// it is the buyer's turn (an admission token for one hold), the product sells out or the turn
// passes. The ticket is kept per SKU in localStorage, with the buyer it was taken for, so a
// reload keeps the place.
"use strict";

window.Line = (() => {
  const { api, buyer, customerId, readJson } = window.Shop;
  const KEY = "shop.tickets";
  const RETRY_MS = 2000; // after an answer that is no ticket's state (busy, unreachable)

  // sku -> {ticket, customer_id, used?}: used once the turn made a hold (the service goes on
  // answering that ticket `admitted`, its token spent: a turn makes one hold).
  const tickets = {
    all: () => readJson(localStorage, KEY, {}),
    // This buyer's ticket for `sku` (one taken for another buyer does not count), or null.
    entry(sku) {
      const entry = tickets.all()[sku];
      return entry && entry.customer_id === customerId() ? entry : null;
    },
    get: (sku) => (tickets.entry(sku) || {}).ticket || null,
    save(sku, ticket, used) {
      const all = tickets.all();
      all[sku] = { ticket, customer_id: customerId(), used: Boolean(used) };
      localStorage.setItem(KEY, JSON.stringify(all));
    },
    forget(sku) {
      const all = tickets.all();
      delete all[sku];
      localStorage.setItem(KEY, JSON.stringify(all));
    },
  };

  // The line of one SKU: onState(state) after every answer, state being the service's view
  // of the ticket ({ticket, status, position, estimated_wait_seconds, poll_after_ms,
  // admission_token?, admission_expires_at?}), or null without a ticket; onRefused(answer)
  // when a join is refused.
  function follow(sku, onState, onRefused) {
    let state = null;
    let timer = null;
    const base = `/v1/queue/${encodeURIComponent(sku)}`;

    function show(next) {
      state = next;
      onState(state);
    }

    function schedule(ms) {
      window.clearTimeout(timer);
      timer = window.setTimeout(read, Math.max(250, ms));
    }

    function take(answer) {
      const before = tickets.entry(sku);
      const same = Boolean(before && before.ticket === answer.body.ticket);
      tickets.save(sku, answer.body.ticket, same && before.used);
      show({ ...answer.body, used: same && before.used });
      // A sold-out line moves again when units come back (a hold lapses or is given back).
      if (["waiting", "sold_out"].includes(answer.body.status)) schedule(answer.body.poll_after_ms);
    }

    async function read() {
      const ticket = tickets.get(sku);
      if (!ticket) {
        show(null);
        return;
      }
      const answer = await api("GET", `${base}/${encodeURIComponent(ticket)}`, undefined, await buyer.headers());
      if (tickets.get(sku) !== ticket) return; // left or joined again meanwhile
      if (answer.ok) {
        take(answer);
      } else if (answer.status === 404) {
        tickets.forget(sku);
        show(null);
      } else {
        const wait = (Number(answer.retryAfter) || 0) * 1000;
        schedule(Math.max(wait, RETRY_MS, (state && state.poll_after_ms) || 0));
      }
    }

    async function join() {
      const answer = await api("POST", base, { customer_id: customerId() }, await buyer.headers());
      if (answer.ok) take({ ...answer, method: "POST" });
      else onRefused(answer);
      return answer;
    }

    // The turn made its hold (or the service says it did): the ticket stays, spent.
    function used() {
      if (!state) return;
      tickets.save(sku, state.ticket, true);
      show({ ...state, used: true });
    }

    return { join, read, used, state: () => state };
  }

  return { follow, tickets };
})();
