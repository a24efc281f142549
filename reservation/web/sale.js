// What a product's card says and offers, from its view, the clock and the buyer's place in
// its line: pure functions, no page state (shop.js draws what they answer).
"use strict";

window.Sale = (() => {
  const { formatLeft } = window.Shop;

  // Where the sale of `view` stands at `now` (the server's clock, ms): "before" its start,
  // "opening" (the start passed here, the service has not said so yet), "open", "ended", or
  // "closed" (not on sale, no window to say why: the service does not hold it yet).
  function phase(view, now) {
    const starts = view.sale_starts_at ? Date.parse(view.sale_starts_at) : null;
    const ends = view.sale_ends_at ? Date.parse(view.sale_ends_at) : null;
    if (ends !== null && now >= ends) return "ended";
    if (view.on_sale) return "open";
    if (starts !== null && now < starts) return "before";
    if (starts !== null) return "opening";
    return "closed";
  }

  // 04:05, 1:04:05; a start a day or more away is a date.
  function countdown(ms, at) {
    const seconds = Math.max(0, Math.ceil(ms / 1000));
    const hours = Math.floor(seconds / 3600);
    const mmss = `${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")}:${String(seconds % 60).padStart(2, "0")}`;
    if (hours >= 24) return `on ${new Date(at).toLocaleString()}`;
    return hours > 0 ? `${hours}:${mmss}` : mmss;
  }

  function when(view, now) {
    const state = phase(view, now);
    if (state === "before") {
      const starts = Date.parse(view.sale_starts_at);
      return { phase: state, text: `Sale starts in ${countdown(starts - now, starts)}` };
    }
    if (state === "opening") return { phase: state, text: "The sale is opening…" };
    if (state === "ended") return { phase: state, text: "The sale has ended." };
    if (state === "closed") return { phase: state, text: "Not on sale." };
    if (view.sale_ends_at) {
      const ends = Date.parse(view.sale_ends_at);
      return { phase: state, text: `Sale ends in ${countdown(ends - now, ends)}` };
    }
    return { phase: state, text: "" };
  }

  function seconds(total) {
    if (total < 60) return `${Math.max(1, Math.round(total))} s`;
    if (total < 3600) return `${Math.round(total / 60)} min`;
    return `${Math.round(total / 3600)} h`;
  }

  // The line's words for the buyer: the ticket's state (null: not in the line).
  function lineText(ticket, view, now) {
    if (!ticket) return "";
    if (ticket.status === "waiting") {
      const wait = ticket.estimated_wait_seconds > 0 ? ` (about ${seconds(ticket.estimated_wait_seconds)} to wait)` : "";
      const draw = phase(view, now) === "before"
        ? " Everyone who joins before the start is placed by one random draw when it starts."
        : "";
      return `You are number ${ticket.position} in the line${wait}.${draw}`;
    }
    if (ticket.used) return "Your turn made a hold: pay for it above.";
    if (ticket.status === "admitted") {
      const left = Date.parse(ticket.admission_expires_at) - now;
      return `It's your turn: buy within ${formatLeft(left)}.`;
    }
    if (ticket.status === "sold_out") return "Sold out while you waited.";
    if (ticket.status === "expired") return "Your turn passed: join the line again.";
    return "";
  }

  // The card's button: {text, enabled, action} where action is "buy", "join" or null.
  function button(view, ticket, now) {
    const state = phase(view, now);
    if (view.available <= 0) return { text: "Sold out", enabled: false, action: null };
    if (state === "ended") return { text: "Sale ended", enabled: false, action: null };
    if (!view.waiting_room) return { text: "Buy", enabled: state === "open", action: "buy" };
    if (!ticket) return { text: "Join the line", enabled: true, action: "join" };
    if (ticket.used) return { text: "Turn used", enabled: false, action: null };
    if (ticket.status === "waiting") return { text: "In line", enabled: false, action: null };
    if (ticket.status === "admitted") {
      const live = Date.parse(ticket.admission_expires_at) > now;
      return { text: "Buy", enabled: live && state === "open", action: "buy" };
    }
    if (ticket.status === "sold_out") return { text: "Sold out", enabled: false, action: null };
    return { text: "Join the line again", enabled: true, action: "join" };
  }

  return { phase, when, lineText, button, countdown };
})();
