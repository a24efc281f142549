// The success page: where Stripe sends the buyer after paying. It shows the order's status as
// the payment's webhook lands (GET /v1/checkout/{session_id}: statuses only, no customer data).
"use strict";

(() => {
  const { api, money, el, holds, describeItems, productNames } = window.Shop;
  const sessionId = new URLSearchParams(window.location.search).get("session_id") || "";
  const main = document.getElementById("order");
  const title = document.getElementById("title");
  const state = document.getElementById("state");
  const FINAL = new Set(["paid", "payment_failed", "refunded", "refunded_oversold", "expired", "unknown"]);
  let names = new Map();
  let shown = "";
  let polls = 0;

  const WORDS = {
    waiting: ["Confirming your payment…", "Waiting for the payment's confirmation from Stripe. This page updates by itself."],
    paid: ["Paid: thank you!", "Your order is confirmed. The units are yours."],
    awaiting_payment: ["Payment pending", "Your bank transfer has not arrived yet. The units stay held for you until it does; this page updates by itself."],
    payment_failed: ["Payment failed", "The payment did not go through. Nothing was charged, and the units went back on sale."],
    refunded: ["Refunded", "This order was refunded."],
    refunded_oversold: ["Refunded: sold out", "Your payment arrived after your hold had lapsed and the last units had gone to others, so it was refunded in full."],
    expired: ["Not paid", "This checkout ended without a payment. Nothing was charged, and the units went back on sale."],
    unknown: ["Checkout not found", "This shop has no checkout with that id."],
  };

  function statusOf(view) {
    if (view.order_status) return view.order_status;
    if (view.session_status === "expired") return "expired";
    return "waiting";
  }

  function show(status, view) {
    main.dataset.status = status;
    if (status !== shown) {
      const [heading, text] = WORDS[status];
      title.textContent = heading;
      state.textContent = text;
      if (shown !== "") title.focus();
      shown = status;
    }
    if (!view) return;
    const lines = document.getElementById("lines");
    lines.replaceChildren(...view.items.map((line) => el("li", {}, describeItems([line], names))));
    document.getElementById("total").textContent =
      view.amount_total === null ? "" : `Total: ${money(view.amount_total, view.currency)}`;
  }

  async function poll() {
    polls += 1;
    const answer = await api("GET", `/v1/checkout/${encodeURIComponent(sessionId)}`);
    let status = "waiting";
    if (answer.status === 404) {
      status = "unknown";
      show(status, null);
    } else if (answer.ok) {
      status = statusOf(answer.body);
      show(status, answer.body);
    }
    if (FINAL.has(status)) {
      holds.forget((hold) => hold.session_id === sessionId);
      return;
    }
    // Every second at first, then every three: a delayed payment may take days.
    window.setTimeout(poll, polls < 30 ? 1000 : 3000);
  }

  (async () => {
    names = await productNames();
    if (!sessionId) {
      show("unknown", null);
      return;
    }
    poll();
  })();
})();
