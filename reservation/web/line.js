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

  const tickets = {
    all: () => readJson(localStorage, KEY, {}),
    // The ticket this buyer holds for `sku` (one taken for another buyer does not count).
    get(sku) {
      const entry = tickets.all()[sku];
      return entry && entry.customer_id === customerId() ? entry.ticket : null;
    },
    save(sku, ticket) {
      const all = tickets.all();
      all[sku] = { ticket, customer_id: customerId() };
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
      tickets.save(sku, answer.body.ticket);
      show(answer.body);
      if (answer.body.status === "waiting") schedule(answer.body.poll_after_ms);
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
      if (answer.ok) take(answer);
      else onRefused(answer);
      return answer;
    }

    // The hold was made (the token is spent) or the buyer changed: no ticket any more.
    function leave() {
      window.clearTimeout(timer);
      tickets.forget(sku);
      show(null);
    }

    return { join, read, leave, state: () => state };
  }

  return { follow, tickets };
})();
