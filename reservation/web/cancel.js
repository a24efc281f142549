// The cancel page: where Stripe sends a buyer who gave up. The hold is released at once
// (DELETE /v1/reservations/{id}), so the units are on sale again before the webhook lands.
"use strict";

(() => {
  const { api, buyer, holds } = window.Shop;
  const reservationId = new URLSearchParams(window.location.search).get("reservation_id") || "";
  const main = document.getElementById("cancel");
  const state = document.getElementById("state");

  function show(status, text) {
    main.dataset.status = status;
    state.textContent = text;
  }

  (async () => {
    if (!reservationId) {
      show("unknown", "Nothing to give back.");
      return;
    }
    const path = `/v1/reservations/${encodeURIComponent(reservationId)}`;
    const answer = await api("DELETE", path, undefined, await buyer.headers());
    if (answer.ok) {
      holds.forget((hold) => hold.reservation_id === reservationId);
      show("released", "Nothing was charged, and the units went back on sale.");
    } else if (answer.body && answer.body.error === "already_committed") {
      holds.forget((hold) => hold.reservation_id === reservationId);
      show("paid", "This order had already been paid: the units are yours.");
    } else if (answer.status === 404) {
      holds.forget((hold) => hold.reservation_id === reservationId);
      show("unknown", "Nothing to give back: this hold is not known.");
    } else {
      show("retry", "The units could not be given back right now; they go back by themselves when the hold lapses.");
    }
  })();
})();
