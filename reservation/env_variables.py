"""The environment variables the service reads, in one table: each one's name, the `Settings`
field it sets, how its text is read (reservation/env_readers.py) and what it means.

`Settings.from_env` reads this table and nothing else reads the environment; the README's table
and `reservation serve --help` are written from it (reservation/settings.py).
"""

from __future__ import annotations

from reservation.env_readers import (
    Variable,
    choice,
    count,
    count_or_off,
    flag,
    header_name,
    header_value_or_off,
    http_url,
    per_second,
    public_key,
    seconds,
    seconds_or_off,
    secret,
    secret_list,
    text,
    url,
)
from reservation.env_waitlist import WAITLIST_VARIABLES

__all__ = ["VARIABLES", "Variable"]


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "REDIS_URL",
        "redis_url",
        text,
        "the Redis of the live counters, e.g. `redis://redis:6379/0`: Redis 7.0 or later (the"
        " scripts are a Redis Functions library, loaded by the service itself)",
        "embedded fakeredis (one worker, nothing kept)",
    ),
    Variable("REDIS_CLUSTER", "redis_cluster", flag, "`REDIS_URL` is a node of a Redis Cluster"),
    Variable(
        "MONGODB_URI",
        "mongodb_uri",
        text,
        "the MongoDB of the catalog, orders and Stripe events",
        "embedded nx-27017, started and stopped with the service",
    ),
    Variable("MONGODB_DATABASE", "mongodb_database", text, "the database in that MongoDB"),
    Variable(
        "RESERVATION_ADMIN_TOKEN",
        "admin_token",
        text,
        "bearer token of the admin endpoints",
        "none (admin refused)",
    ),
    Variable("RESERVATION_HOLD_SECONDS", "hold_seconds", seconds, "how long a hold lives"),
    Variable(
        "RESERVATION_AWAITING_PAYMENT_SECONDS",
        "awaiting_payment_seconds",
        seconds,
        "how long a hold waits for a delayed payment method (a completed Checkout that is not"
        " paid yet)",
        "259200 (3 days)",
    ),
    Variable("RESERVATION_KEY_PREFIX", "key_prefix", text, "prefix of every Redis key"),
    Variable(
        "RESERVATION_SOLD_OUT_CACHE_SECONDS",
        "sold_out_cache_seconds",
        seconds_or_off,
        'how long a process answers "sold out" from memory after Redis said 0 left (0: off)',
    ),
    Variable(
        "RESERVATION_READ_CACHE_SECONDS",
        "read_cache_seconds",
        seconds_or_off,
        "how long a process reuses a product read (one SKU or the list) that another process"
        " may have changed since; its own writes are seen at once (0: off)",
    ),
    Variable(
        "RESERVATION_SWEEP_SECONDS",
        "sweep_seconds",
        seconds_or_off,
        "background sweeper interval (0: off, e.g. to run `reservation sweep` from cron)",
    ),
    Variable(
        "RESERVATION_REFUND_RETRY_SECONDS",
        "refund_retry_seconds",
        seconds,
        "after Stripe refuses an oversold payment's refund, the sweeper tries again after this"
        " long, doubling each time up to an hour",
    ),
    Variable(
        "RESERVATION_REFUND_RETRY_WINDOW_SECONDS",
        "refund_retry_window_seconds",
        seconds,
        "how long after the first refusal the sweeper keeps retrying a refused refund; then it"
        " waits for an admin (POST /v1/refunds/{checkout_session_id}/retry or /settle)",
        "86400 (1 day)",
    ),
    Variable(
        "RESERVATION_RECONCILE_ON_START",
        "reconcile_on_start",
        flag,
        "at start, restore from MongoDB every catalog SKU that Redis is missing",
    ),
    Variable(
        "RESERVATION_REBUILD_CHECK_SECONDS",
        "rebuild_check_seconds",
        seconds_or_off,
        "how often each process checks that Redis still has its counters and, when Redis lost"
        " them (restarted empty), rebuilds them from MongoDB (0: off; `reservation reconcile`"
        " by hand)",
    ),
    Variable(
        "RESERVATION_REDIS_TIMEOUT_SECONDS",
        "redis_timeout_seconds",
        seconds,
        "the longest a Redis command (or connecting) may take; then the request answers 503",
    ),
    Variable(
        "RESERVATION_REDIS_POOL_SIZE",
        "redis_pool_size",
        count,
        "the most Redis connections one process keeps (to each node of a cluster); a command"
        " that finds them all busy waits its turn, up to 5 s, then the request answers 503"
        " `storage_unavailable`",
    ),
    Variable(
        "RESERVATION_KEEP_ALIVE_SECONDS",
        "keep_alive_seconds",
        count,
        "how long a connection may stay idle between two requests (uvicorn's"
        " `--timeout-keep-alive`); keep it above the idle timeout of a load balancer in front"
        " (60 s on AWS ALB), so that it never sends a request on a connection being closed",
    ),
    Variable(
        "RESERVATION_HEADER_TIMEOUT_SECONDS",
        "header_timeout_seconds",
        seconds,
        "the longest a request's line and headers may take to arrive, from the connection's"
        " start or the request's first byte; then 408, or the connection is closed if nothing"
        " came",
    ),
    Variable(
        "RESERVATION_BODY_TIMEOUT_SECONDS",
        "body_timeout_seconds",
        seconds,
        "how long a request's body may take to arrive, on top of the time its line and headers"
        " had (the whole request is due within both timeouts of its first byte); then 408",
    ),
    Variable(
        "RESERVATION_MAX_HEADER_BYTES",
        "max_header_bytes",
        count,
        "the most a request's line and headers may take; more is refused with 431",
        "32768 (32 KiB)",
    ),
    Variable(
        "RESERVATION_MAX_CONCURRENT_REQUESTS",
        "max_concurrent_requests",
        count,
        "requests one process works on at once; more are refused at once with 503"
        " `server_busy` and `Retry-After` (uvicorn's `--limit-concurrency`, but idle"
        " connections do not count; `/healthz` and `/readyz` are never refused)",
    ),
    Variable(
        "RESERVATION_MAX_REQUESTS_PER_CLIENT",
        "max_requests_per_client",
        count_or_off,
        "requests one client address may have in flight in a process (the rate limit's"
        " address); more are refused at once with 429 `too_many_requests_in_flight` and"
        " `Retry-After`, while other clients are served (0: no share)",
    ),
    Variable(
        "RESERVATION_MAX_CONNECTIONS_PER_CLIENT",
        "max_connections_per_client",
        count_or_off,
        "connections one peer address may have open to a process; a connection past them is"
        " closed at once, unanswered. Not applied with `RESERVATION_TRUSTED_PROXY_HEADER`,"
        " where every connection comes from the proxy (0: no share)",
    ),
    Variable(
        "RESERVATION_MAX_STREAMS",
        "max_streams",
        count,
        "open event streams (`GET /v1/products/{sku}/events`) one process keeps; one more is"
        " refused with 503 `server_busy` and `Retry-After`. Streams are not requests in flight",
    ),
    Variable(
        "RESERVATION_STREAM_KEEPALIVE_SECONDS",
        "stream_keepalive_seconds",
        seconds,
        "how often an event stream with nothing new sends a keep-alive comment",
    ),
    Variable(
        "RESERVATION_PRODUCT_CACHE_CONTROL",
        "product_cache_control",
        header_value_or_off,
        "the `Cache-Control` of product reads (`GET /v1/products`, `GET /v1/products/{sku}`),"
        " so a CDN may answer the crowd's polling (`off`: none)",
    ),
    Variable(
        "RESERVATION_MAX_BODY_BYTES_IN_FLIGHT",
        "max_body_bytes_in_flight",
        count,
        "the most bytes of request bodies one process holds at once while they arrive (every"
        " request together, an eighth of it for one client address; one body is at most"
        " 64 KiB, a Stripe event 1 MiB); a body that would take more is refused with 503"
        " `server_busy` and `Retry-After`",
        "67108864 (64 MiB)",
    ),
    Variable(
        "RESERVATION_REQUIRE_CUSTOMER",
        "require_customer",
        flag,
        "refuse reservations of limited SKUs without a `customer_id`",
    ),
    Variable(
        "RESERVATION_IP_RATE_LIMIT",
        "ip_rate_limit",
        count_or_off,
        "reservations, checkouts and queue joins one client address may ask for within"
        " `RESERVATION_IP_RATE_WINDOW_SECONDS`, in every process together; more answer 429"
        " (0: off)",
    ),
    Variable(
        "RESERVATION_IP_RATE_WINDOW_SECONDS",
        "ip_rate_window_seconds",
        seconds_or_off,
        "the sliding window of that limit (0: off)",
    ),
    Variable(
        "RESERVATION_CUSTOMER_RATE_LIMIT",
        "customer_rate_limit",
        count_or_off,
        "reservations, checkouts and queue joins one `customer_id` may ask for within"
        " `RESERVATION_CUSTOMER_RATE_WINDOW_SECONDS`; more answer 429 (0: off)",
    ),
    Variable(
        "RESERVATION_CUSTOMER_RATE_WINDOW_SECONDS",
        "customer_rate_window_seconds",
        seconds_or_off,
        "the sliding window of that limit (0: off)",
    ),
    Variable(
        "RESERVATION_MAX_HOLDS_PER_CUSTOMER",
        "max_holds_per_customer",
        count_or_off,
        "live holds (held, not paid) one `customer_id` may have in a pool; one more answers"
        " 409 `hold_cap_reached` (0: no cap)",
    ),
    Variable(
        "RESERVATION_TRUSTED_PROXY_HEADER",
        "trusted_proxy_header",
        header_name,
        "the header your reverse proxy writes the client's address into, e.g."
        " `X-Forwarded-For` (its right-most entry is taken) or `X-Real-IP`; set it only behind"
        " a proxy that writes it, since clients can send any header",
        "none (the socket peer's address; such headers are ignored)",
    ),
    Variable(
        "RESERVATION_CUSTOMER_TOKEN_SECRET",
        "customer_token_secret",
        secret,
        "the HS256 secret your shop signs customer tokens with (`Authorization: Bearer`, see"
        " *Customer tokens*): 32 or more characters; with a key set, a request's customer is"
        " the token's `sub`. Set at most one of this, the public key and the JWKS URL",
        "none (customer ids are not verified)",
    ),
    Variable(
        "RESERVATION_CUSTOMER_TOKEN_PUBLIC_KEY",
        "customer_token_public_key",
        public_key,
        "or the PEM public key that verifies them: RSA (RS256) or EC P-256 (ES256); `\\n` may"
        " stand for each line break",
        "none",
    ),
    Variable(
        "RESERVATION_CUSTOMER_JWKS_URL",
        "customer_jwks_url",
        http_url,
        "or a JWKS URL of such public keys, chosen by the token's `kid`: kept in memory,"
        " fetched again every 5 minutes and on an unknown `kid` (at most every 10 s), never per"
        " request",
        "none",
    ),
    Variable(
        "RESERVATION_CUSTOMER_TOKEN_AUDIENCE",
        "customer_token_audience",
        text,
        "the `aud` a customer token must carry",
    ),
    Variable(
        "RESERVATION_CUSTOMER_TOKEN_ISSUER",
        "customer_token_issuer",
        text,
        "the `iss` a customer token must carry",
        "none (not checked)",
    ),
    Variable(
        "RESERVATION_CUSTOMER_TOKEN_LEEWAY_SECONDS",
        "customer_token_leeway_seconds",
        seconds_or_off,
        "the clock difference allowed when a token's `exp`, `nbf` and `iat` are checked",
    ),
    Variable(
        "RESERVATION_RESTOCK_ON_REFUND",
        "restock_on_refund",
        flag,
        "a full refund puts the units back on sale",
    ),
    Variable(
        "RESERVATION_DATA_DIR", "data_dir", text, "where the embedded MongoDB keeps its files"
    ),
    Variable(
        "RESERVATION_LOG_FORMAT",
        "log_format",
        choice("text", "json"),
        "`text`: log lines for people; `json`: one JSON object per line (uvicorn's lines too),"
        " with the context of each money decision (event, session, reservation, SKUs, outcome);"
        " secrets are never logged",
    ),
    Variable(
        "STRIPE_SECRET_KEY",
        "stripe_secret_key",
        text,
        "Stripe API key (`sk_test_…` in test mode)",
        "none (checkout answers 503)",
    ),
    Variable(
        "STRIPE_WEBHOOK_SECRET",
        "stripe_webhook_secret",
        text,
        "signing secret of the webhooks (`whsec_…`)",
        "none (webhooks refused)",
    ),
    Variable(
        "RESERVATION_SESSION_SECRET",
        "session_secrets",
        secret_list,
        "the key of the seal (HMAC-SHA256) each Checkout Session's metadata carries, so that a"
        " webhook acts only on sessions this service made: 32 or more characters, the same in"
        " every process; to rotate, put the new one first, comma-separated, and drop the old"
        " one once its sessions are settled (a week)",
        "none (checkout answers 503; webhooks act only on recorded sessions)",
    ),
    Variable(
        "STRIPE_API_BASE",
        "stripe_api_base",
        url,
        "another Stripe-compatible API, e.g. `reservation stripe-sim` for load tests",
        "Stripe's own",
    ),
    Variable(
        "STRIPE_CONCURRENCY",
        "stripe_concurrency",
        count,
        "Stripe calls one process makes at once",
    ),
    Variable(
        "STRIPE_RATE_PER_SECOND",
        "stripe_rate_per_second",
        per_second,
        "Stripe calls all processes together make per second (the account's limit; test mode"
        " allows about 25): shared through Redis by every process of one"
        " `RESERVATION_KEY_PREFIX`; while Redis does not answer, each process keeps to it alone",
    ),
    Variable(
        "STRIPE_TIMEOUT_SECONDS",
        "stripe_timeout_seconds",
        seconds,
        "the longest a buyer waits for Stripe, retries included, before a 503",
    ),
    Variable(
        "STRIPE_MAX_ATTEMPTS",
        "stripe_max_attempts",
        count,
        "attempts of one Stripe call (network errors, 5xx, 429) within that time",
    ),
    Variable(
        "PUBLIC_URL",
        "public_url",
        url,
        "where buyers reach the service (Stripe Checkout's return pages)",
    ),
    *WAITLIST_VARIABLES,
)
