// The operations page: GET /v1/ops/summary every two seconds with the admin token the owner
// typed (kept in sessionStorage), drawn as tables, tiles and a hand-made SVG chart; the line
// of every SKU with a waiting room (GET /v1/queue/{sku}); and the waiting lists (GET
// /v1/waitlist/{sku}) of the SKUs with anyone in line, sold out, or with offers out when last read.
"use strict";

(() => {
  const { api, money, el } = window.Shop;
  const REFRESH_MS = 2000;
  const BUCKET = 5; // seconds per point of the chart
  const KEY = "ops.token";
  const login = document.getElementById("login");
  const dashboard = document.getElementById("dashboard");
  let timer = null;
  let paused = false;

  function token() {
    return sessionStorage.getItem(KEY);
  }

  function showLogin(message) {
    window.clearTimeout(timer);
    dashboard.hidden = true;
    login.hidden = false;
    document.getElementById("login-error").textContent = message || "";
    document.getElementById("token").focus();
  }

  login.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("token");
    sessionStorage.setItem(KEY, input.value.trim());
    input.value = "";
    load(true);
  });

  document.getElementById("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    showLogin("");
  });

  document.getElementById("pause").addEventListener("click", (event) => {
    paused = !paused;
    event.target.textContent = paused ? "Resume updates" : "Pause updates";
    if (!paused) load(false);
  });

  function cell(text, numeric) {
    return el("td", numeric ? { class: "n" } : {}, String(text));
  }

  function fill(tableId, rows) {
    document.querySelector(`#${tableId} tbody`).replaceChildren(...rows);
  }

  function facts(listId, pairs) {
    const nodes = [];
    for (const [label, value, field] of pairs) {
      nodes.push(el("dt", {}, label), el("dd", { "data-field": field }, String(value)));
    }
    document.getElementById(listId).replaceChildren(...nodes);
  }

  function items(lines) {
    return lines.map((line) => `${line.quantity} × ${line.sku}`).join(", ");
  }

  function seconds(value) {
    return value === null ? "–" : `${value < 10 ? value.toFixed(2) : value.toFixed(0)} s`;
  }

  // 42 s, 12 min, 5 h, 3 d: a hold waiting for a bank transfer lasts days.
  function duration(secondsLeft) {
    const s = Math.ceil(secondsLeft);
    if (s < 120) return `${s} s`;
    if (s < 120 * 60) return `${Math.round(s / 60)} min`;
    if (s < 48 * 3600) return `${Math.round(s / 3600)} h`;
    return `${Math.round(s / 86400)} d`;
  }

  function time(text) {
    return new Date(text).toLocaleTimeString();
  }

  function render(summary) {
    let available = 0;
    let held = 0;
    let sold = 0;
    fill("stock", summary.products.map((p) => {
      available += p.available;
      held += p.held;
      sold += p.sold;
      return el("tr", { "data-sku": p.sku },
        el("th", { scope: "row" }, p.sku), cell(p.name),
        el("td", { class: "n", "data-field": "total" }, String(p.total)),
        el("td", { class: "n", "data-field": "held" }, String(p.held)),
        el("td", { class: "n", "data-field": "sold" }, String(p.sold)),
        el("td", { class: "n", "data-field": "available" }, String(p.available)));
    }));
    const counts = summary.orders.by_status;
    document.getElementById("t-available").textContent = available;
    document.getElementById("t-held").textContent = held;
    document.getElementById("t-sold").textContent = sold;
    document.getElementById("t-paid").textContent = counts.paid || 0;
    const hooks = summary.webhooks;
    document.getElementById("t-failed").textContent = hooks.failing;
    document.getElementById("tile-failed").classList.toggle("bad", hooks.failing > 0);
    const refused = counts.refund_failed || 0;
    document.getElementById("t-refunds").textContent = refused;
    document.getElementById("tile-refunds").classList.toggle("bad", refused > 0);
    const gate = summary.stripe_gate;
    document.getElementById("t-gate").textContent = `${gate.in_flight}/${gate.concurrency}`;

    document.getElementById("live-holds").textContent =
      `${summary.holds.live} live holds; a hold lasts ${summary.hold_seconds} s.`;
    fill("lapsing", summary.holds.lapsing.map((h) => el("tr", { "data-reservation": h.reservation_id },
      el("td", {}, el("code", { title: h.reservation_id }, `…${h.reservation_id.slice(-8)}`)),
      cell(items(h.items)), cell(duration(h.seconds_left), true))));
    if (!summary.holds.lapsing.length) fill("lapsing", [el("tr", {}, el("td", { colspan: 3 }, "No live holds."))]);

    const statuses = Object.entries(counts).map(([status, n]) => `${n} ${status.replace("_", " ")}`);
    document.getElementById("order-counts").textContent =
      statuses.length ? `All orders: ${statuses.join(", ")}.` : "No orders yet.";
    fill("orders", summary.orders.recent.map((o) => el("tr", { "data-session": o.checkout_session_id },
      cell(time(o.created_at)),
      el("td", {}, el("code", { title: o.checkout_session_id }, `…${o.checkout_session_id.slice(-10)}`)),
      cell(items(o.items)), cell(money(o.amount_total, o.currency), true),
      el("td", {}, el("span", { class: `badge ${o.status}`, "data-field": "status" }, o.status.replace("_", " "))))));

    facts("webhooks", [
      ["received", hooks.received, "received"],
      ["processed", hooks.processed, "processed"],
      ["failed at least once", hooks.failed, "failed"],
      ["failing now (Stripe retries)", hooks.failing, "failing"],
      ["in flight", hooks.pending, "pending"],
      ["delivery lag, median / max", `${seconds(hooks.delivery_lag_p50)} / ${seconds(hooks.delivery_lag_max)}`, "lag"],
      ["handling, median / max", `${seconds(hooks.handling_p50)} / ${seconds(hooks.handling_max)}`, "handling"],
      ["last received", hooks.last_received_at ? time(hooks.last_received_at) : "never", "last"],
    ]);
    const outbox = summary.shop_webhooks;
    facts("outbox", [
      ["sent to", outbox.configured ? "the shop's URL" : "nowhere (RESERVATION_SHOP_WEBHOOK_URL unset): kept", "configured"],
      ["pending", outbox.pending, "pending"],
      ["oldest pending", outbox.oldest_pending_seconds === null ? "none" : `${seconds(outbox.oldest_pending_seconds)} old`, "oldest"],
      ["failing now (retried with backoff)", outbox.failing, "failing"],
      ["delivered", outbox.delivered, "delivered"],
    ]);
    facts("gate", [
      ["configured", gate.configured ? "yes" : "no (STRIPE_SECRET_KEY unset)", "configured"],
      ["calls in flight", `${gate.in_flight} of ${gate.concurrency}`, "in_flight"],
      ["saturated", gate.saturated ? "yes: new calls queue" : "no", "saturated"],
      ["checkouts answered 503", gate.checkouts_unavailable, "checkouts_unavailable"],
      ["all 503 answers", gate.answers_503, "answers_503"],
    ]);
    chart(summary.rates);
    document.getElementById("updated").textContent =
      `Updated ${time(summary.generated_at)}. The gate and the chart are this server process's.`;
    customerNote(summary.customer_ids_verified);
  }

  // Without a key of customer tokens, per-customer limits trust whatever id a client sends.
  function customerNote(verified) {
    let note = document.getElementById("unverified");
    if (!note) {
      note = el("p", { id: "unverified", class: "message bad", role: "status" });
      document.getElementById("updated").after(note);
    }
    note.hidden = verified;
    note.textContent = verified ? "" : "Customer ids are not verified: set RESERVATION_CUSTOMER_TOKEN_SECRET " +
      "(or a public key, or a JWKS URL) so that per-customer limits bind real buyers.";
  }

  function buckets(series, step) {
    const out = [];
    for (let i = 0; i < series.length; i += BUCKET) {
      const part = series.slice(i, i + BUCKET);
      out.push(part.reduce((a, b) => a + b, 0) / (part.length * step));
    }
    return out;
  }

  const NS = "http://www.w3.org/2000/svg";
  function svg(tag, attributes, text) {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function chart(rates) {
    const holds = buckets(rates.holds, rates.step_seconds);
    const sales = buckets(rates.sales, rates.step_seconds);
    const width = 640;
    const height = 180;
    const left = 40;
    const bottom = 24;
    const top = 10;
    const peak = Math.max(1, ...holds, ...sales);
    const niceTop = peak <= 5 ? Math.ceil(peak) : Math.ceil(peak / 5) * 5;
    const x = (i, n) => left + (i * (width - left - 8)) / Math.max(n - 1, 1);
    const y = (v) => height - bottom - (v / niceTop) * (height - bottom - top);
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "chart-summary" });
    for (const v of [0, niceTop / 2, niceTop]) {
      root.append(svg("line", { x1: left, x2: width - 8, y1: y(v), y2: y(v), stroke: "#d4d4d8" }));
      root.append(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#4b5563" },
        Number.isInteger(v) ? String(v) : v.toFixed(1)));
    }
    const minutes = Math.round((rates.holds.length * rates.step_seconds) / 60);
    root.append(svg("text", { x: left, y: height - 6, "font-size": 11, fill: "#4b5563" }, `−${minutes} min`));
    root.append(svg("text", { x: width - 8, y: height - 6, "text-anchor": "end", "font-size": 11, fill: "#4b5563" }, "now"));
    const line = (values, colour, dash) => {
      const points = values.map((v, i) => `${x(i, values.length).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      return svg("polyline", { points, fill: "none", stroke: colour, "stroke-width": 2.5, "stroke-dasharray": dash, "stroke-linejoin": "round" });
    };
    root.append(line(holds, "#1d4ed8", "none"), line(sales, "#166534", "6 3"));
    document.getElementById("chart").replaceChildren(root);
    const lastMinute = (series) => series.slice(-60 / rates.step_seconds).reduce((a, b) => a + b, 0);
    document.getElementById("chart-summary").textContent =
      `Last minute: ${lastMinute(rates.holds)} holds, ${lastMinute(rates.sales)} sales. ` +
      `Peak over ${minutes} minutes: ${Math.max(...holds).toFixed(1)} holds/s, ${Math.max(...sales).toFixed(1)} sales/s ` +
      `(averaged over ${BUCKET} s).`;
  }

  // Each roomed SKU's line (admin GET /v1/queue/{sku}); the rooms are in the product views.
  async function lines(headers, products) {
    const roomed = products.filter((product) => product.waiting_room);
    const answers = await Promise.all(roomed.map((product) =>
      api("GET", `/v1/queue/${encodeURIComponent(product.sku)}`, undefined, headers)));
    const rows = answers.filter((answer) => answer.ok).map(({ body }) => {
      const count = (field) => el("td", { class: "n", "data-field": field }, String(body[field]));
      return el("tr", { "data-sku": body.sku },
        el("th", { scope: "row" }, body.sku),
        cell(body.waiting_room.admit_per_second, true), cell(body.waiting_room.max_active, true),
        el("td", { "data-field": "started" }, body.started ? "yes" : "not yet"),
        count("waiting"), count("active"), count("admitted"), count("used"));
    });
    document.getElementById("rooms").hidden = rows.length === 0;
    fill("lines", rows);
  }

  // The waiting lists (admin GET /v1/waitlist/{sku}) worth a read: a product view says who is in
  // line (`waitlist`) and whether it is sold out; offers out are seen in the lists read, so a
  // list keeps being read while it has any.
  const offering = new Set();
  async function waitlists(headers, products) {
    const listed = products.filter((p) => p.waitlist > 0 || p.available <= 0 || offering.has(p.sku));
    const answers = await Promise.all(listed.map((product) =>
      api("GET", `/v1/waitlist/${encodeURIComponent(product.sku)}`, undefined, headers, "no-cache")));
    const shown = answers.filter((answer) => answer.ok).map(({ body }) => body);
    offering.clear();
    for (const list of shown) if (list.offers > 0) offering.add(list.sku);
    const rows = shown.filter((list) => list.waiting > 0 || list.offers > 0 || list.closed).map((list) => {
      const count = (field) => el("td", { class: "n", "data-field": field }, String(list[field]));
      const head = list.line.length ? `${list.line[0].customer_id} (${list.line[0].quantity})` : "–";
      return el("tr", { "data-sku": list.sku },
        el("th", { scope: "row" }, list.sku), count("waiting"), count("offers"),
        el("td", { "data-field": "head" }, head),
        el("td", { "data-field": "closed" }, list.closed ? "closed" : "open"));
    });
    document.getElementById("waitlists").hidden = rows.length === 0;
    fill("waitlist-lines", rows);
  }

  // The refunds Stripe refused for good (admin GET /v1/refunds/failed): each needs a person once
  // the sweeper's retries run out.
  async function refunds(headers) {
    const answer = await api("GET", "/v1/refunds/failed", undefined, headers, "no-cache");
    if (!answer.ok) return;
    const rows = answer.body.data.map((refund) => el("tr", { "data-session": refund.checkout_session_id },
      el("th", { scope: "row" }, refund.checkout_session_id),
      cell(`${refund.code || "–"}: ${refund.message}`), cell(refund.attempts, true),
      cell(time(refund.next_attempt_at)), cell(time(refund.retries_until))));
    document.getElementById("refunds").hidden = rows.length === 0;
    fill("refused", rows);
  }

  async function queues(headers) {
    const listed = await api("GET", "/v1/products", undefined, undefined, "no-cache");
    if (!listed.ok) return;
    await Promise.all([lines(headers, listed.body.data), waitlists(headers, listed.body.data)]);
  }

  async function load(first) {
    window.clearTimeout(timer);
    const secret = token();
    if (!secret) {
      showLogin("");
      return;
    }
    const headers = { Authorization: `Bearer ${secret}` };
    const [answer] = await Promise.all([
      api("GET", "/v1/ops/summary", undefined, headers), queues(headers), refunds(headers)]);
    if (answer.status === 401) {
      sessionStorage.removeItem(KEY);
      showLogin("That token was refused.");
      return;
    }
    login.hidden = true;
    dashboard.hidden = false;
    const problem = document.getElementById("problem");
    if (answer.ok) {
      problem.textContent = "";
      render(answer.body);
      if (first) document.getElementById("stock-title").focus();
    } else {
      problem.textContent = `The summary is unavailable (${(answer.body && answer.body.message) || answer.status}); retrying.`;
    }
    if (!paused) timer = window.setTimeout(() => load(false), REFRESH_MS);
  }

  load(false);
})();
