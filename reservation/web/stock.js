// Live stock for the storefront: one EventSource per product shown, on
// GET /v1/products/{sku}/events (event `stock`, data {sku, available, on_sale}), instead of
// reading every product every two seconds. The page falls back to reading them (polling)
// for a product whose stream cannot be had: one beyond MAX_STREAMS, or when a stream fails
// FAILURES times in a row, is refused (a service without streams, or at its stream cap), or
// sends nothing at all within FIRST_EVENT_MS (a proxy that buffers it).
"use strict";

window.StockFeed = (() => {
  // A browser opens at most six HTTP/1.1 connections per origin and a stream keeps one:
  // leave room for the page's own calls. (Over HTTP/2 the streams share one connection.)
  const MAX_STREAMS = 4;
  const FAILURES = 3;
  const FIRST_EVENT_MS = 15000;

  // onStock(data) for every event; a feed that polls calls nobody: the page asks polling().
  function create(onStock) {
    const streams = new Map(); // sku -> {source, failures, heard, timer}
    const givenUp = new Set(); // SKUs whose stream failed: polled from now on
    const supported = typeof window.EventSource === "function";

    function giveUp(sku) {
      const stream = streams.get(sku);
      if (stream) {
        stream.source.close();
        window.clearTimeout(stream.timer);
        streams.delete(sku);
      }
      givenUp.add(sku);
    }

    function open(sku) {
      const source = new EventSource(`/v1/products/${encodeURIComponent(sku)}/events`);
      const stream = { source, failures: 0, heard: false, timer: null };
      stream.timer = window.setTimeout(() => {
        if (!stream.heard) giveUp(sku);
      }, FIRST_EVENT_MS);
      source.addEventListener("stock", (event) => {
        stream.heard = true;
        stream.failures = 0;
        let data = null;
        try {
          data = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        if (data && data.sku === sku) onStock(data);
      });
      source.addEventListener("error", () => {
        // EventSource reconnects by itself (with Last-Event-ID) unless the answer was not a
        // stream (an error status): then it is closed for good.
        stream.failures += 1;
        if (source.readyState === EventSource.CLOSED || stream.failures >= FAILURES) giveUp(sku);
      });
      streams.set(sku, stream);
    }

    // Stream these SKUs (the products shown), as many as may be; close the others' streams.
    function watch(skus) {
      const wanted = new Set(skus);
      for (const sku of [...streams.keys()]) {
        if (!wanted.has(sku)) {
          streams.get(sku).source.close();
          window.clearTimeout(streams.get(sku).timer);
          streams.delete(sku);
        }
      }
      if (!supported) return;
      for (const sku of skus) {
        if (streams.size >= MAX_STREAMS) break;
        if (!streams.has(sku) && !givenUp.has(sku)) open(sku);
      }
    }

    // Must the page read the products itself? (Some product shown has no stream.)
    function polling(skus) {
      return skus.some((sku) => !streams.has(sku));
    }

    return { watch, polling, streaming: (sku) => streams.has(sku) };
  }

  return { create };
})();
