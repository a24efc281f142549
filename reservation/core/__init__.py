"""The stock core on Redis: holds, stock administration, the pool directory and its caches,
idempotency keys, rate limits and webhook deliveries. It knows nothing of MongoDB, Stripe or
HTTP."""
