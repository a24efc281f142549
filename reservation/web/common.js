// Helpers shared by the storefront, its return pages and the operations page.
"use strict";

window.Shop = (() => {
  // Minor units per currency, as the service and Stripe count them (reservation/money.py).
  const ZERO_DECIMAL = new Set(["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
    "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]);
  const THREE_DECIMAL = new Set(["bhd", "jod", "kwd", "omr", "tnd"]);
  // The server's clock minus this browser's, in ms, known within [low, high]. A response's
  // Date header has whole seconds, and a server may keep it for a second (uvicorn does), so
  // the server's clock read D to D + 2 s at some moment between the request's start (t0) and
  // its answer (t1): each answer bounds the skew, and several answers together pin it. A
  // cacheable answer may be older than the request by its max-age. Bounds that stop agreeing
  // (a clock was set) start again from the latest answer. A skew under SKEW_MS is not told
  // apart from none: this browser's clock is used as it is.
  const SKEW_MS = 2000;
  const clock = { low: -Infinity, high: Infinity };

  function noteClock(response, t0, t1) {
    const date = Date.parse(response.headers.get("date") || "");
    if (Number.isNaN(date)) return;
    const maxAge = /max-age=(\d+)/.exec(response.headers.get("cache-control") || "");
    const age = Number(response.headers.get("age")) || 0;
    const stale = maxAge ? (Number(maxAge[1]) + age) * 1000 : 0;
    const low = date - t1;
    const high = date + 2000 + stale - t0;
    if (Math.max(low, clock.low) > Math.min(high, clock.high)) {
      clock.low = low;
      clock.high = high;
    } else {
      clock.low = Math.max(low, clock.low);
      clock.high = Math.min(high, clock.high);
    }
  }

  function skew() {
    if (clock.low === -Infinity) return 0;
    const estimate = (clock.low + clock.high) / 2;
    return Math.abs(estimate) > SKEW_MS ? estimate : 0;
  }

  function serverNow() {
    return Date.now() + skew();
  }

  // One call of the JSON API: {ok, status, body, retryAfter}; never throws. `cache`: the
  // fetch's cache mode ("no-cache": not an answer the browser kept, for a read that must see
  // the page's own write).
  async function api(method, path, body, headers, cache) {
    const init = { method, headers: { Accept: "application/json", ...(headers || {}) } };
    if (cache) init.cache = cache;
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    const t0 = Date.now();
    try {
      response = await fetch(path, init);
    } catch (error) {
      return { ok: false, status: 0, body: { error: "network", message: "The shop cannot be reached." } };
    }
    noteClock(response, t0, Date.now());
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    return { ok: response.ok, status: response.status, body: data, retryAfter: response.headers.get("retry-after") };
  }

  function money(amount, currency) {
    const code = (currency || "").toLowerCase();
    const digits = ZERO_DECIMAL.has(code) ? 0 : THREE_DECIMAL.has(code) ? 3 : 2;
    const value = amount / 10 ** digits;
    try {
      return new Intl.NumberFormat(undefined, {
        style: "currency", currency: code.toUpperCase(),
        minimumFractionDigits: digits, maximumFractionDigits: digits,
      }).format(value);
    } catch (error) {
      return `${value.toFixed(digits)} ${code.toUpperCase()}`;
    }
  }

  // An element with attributes and children (strings become text: nothing is parsed as HTML).
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === false || value === null || value === undefined) continue;
      node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function randomHex(bytes) {
    const values = crypto.getRandomValues(new Uint8Array(bytes));
    return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // A random UUID (crypto.randomUUID needs a secure context; a LAN address over http is not).
  function newKey() {
    const h = randomHex(16);
    const variant = ((parseInt(h[16], 16) & 3) | 8).toString(16);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20)}`;
  }

  function readJson(storage, key, fallback) {
    try {
      const value = JSON.parse(storage.getItem(key));
      return value === null ? fallback : value;
    } catch (error) {
      return fallback;
    }
  }

  // The buyer a shop's backend vouches for: a name in, a customer token out (the demo's,
  // harness/shop_front.py, on this origin). {name, customer_id, token, expires_at}, or null.
  const RENEW_MS = 60000; // a token this close to its end is renewed before it is sent
  const buyer = {
    get: () => readJson(localStorage, "shop.buyer", null),
    forget: () => localStorage.removeItem("shop.buyer"),
    // Is there a shop's backend to ask? (Without one, the storefront is anonymous as before.)
    async offered() {
      const answer = await api("GET", "/shop");
      return answer.ok && Boolean(answer.body && answer.body.tokens);
    },
    async signIn(name) {
      const answer = await api("POST", "/shop/token", { name });
      if (answer.ok) localStorage.setItem("shop.buyer", JSON.stringify(answer.body));
      return answer;
    },
    // The headers of one of the buyer's requests: `Authorization: Bearer <token>`, the token
    // renewed first when it is about to end; none without a buyer.
    async headers() {
      let current = this.get();
      if (!current) return {};
      if (Date.parse(current.expires_at) - Date.now() < RENEW_MS) {
        const renewed = await this.signIn(current.name);
        if (renewed.ok) current = renewed.body;
      }
      return { Authorization: `Bearer ${current.token}` };
    },
  };

  // This browser's buyer: per-customer limits count what it holds and buys. The id the shop
  // vouches for, else one of this browser's own.
  function customerId() {
    const vouched = buyer.get();
    if (vouched) return vouched.customer_id;
    let id = localStorage.getItem("shop.customer");
    if (!id) {
      id = `web-${randomHex(12)}`;
      localStorage.setItem("shop.customer", id);
    }
    return id;
  }

  // The holds of this browser: [{reservation_id, items, expires_at, session_id?}].
  const holds = {
    all: () => readJson(localStorage, "shop.holds", []),
    save: (list) => localStorage.setItem("shop.holds", JSON.stringify(list)),
    forget(predicate) {
      this.save(this.all().filter((hold) => !predicate(hold)));
    },
  };

  function formatLeft(ms) {
    const seconds = Math.max(0, Math.ceil(ms / 1000));
    const minutes = Math.floor(seconds / 60);
    return `${minutes}:${String(seconds % 60).padStart(2, "0")}`;
  }

  function describeItems(items, names) {
    return items.map((line) => `${line.quantity} × ${names.get(line.sku) || line.sku}`).join(", ");
  }

  async function productNames() {
    const answer = await api("GET", "/v1/products");
    const names = new Map();
    if (answer.ok) for (const product of answer.body.data) names.set(product.sku, product.name);
    return names;
  }

  return { api, money, el, newKey, customerId, buyer, holds, serverNow, formatLeft, describeItems, productNames, readJson };
})();
