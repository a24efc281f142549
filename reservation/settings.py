"""Configuration: one frozen value, read from the environment by one table of variables.

`VARIABLES` names every environment variable, the `Settings` field it sets, how its text is
read and what it means. `Settings.from_env` reads that table and nothing else reads the
environment; the README's table (`markdown_table`) and `reservation serve --help`
(`help_text`) are written from it, and tests/test_settings.py holds the three together.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

# Every Redis key of the service starts with this (RESERVATION_KEY_PREFIX; core/keys.py).
DEFAULT_PREFIX = "rsv"


class SettingsError(ValueError):
    """A configuration variable has a value the service cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service is configured with; secrets stay out of repr()."""

    redis_url: str | None = None  # None: embedded (fakeredis, one process only)
    redis_cluster: bool = False
    mongodb_uri: str | None = field(default=None, repr=False)  # None: embedded nx-27017
    mongodb_database: str = "reservation"
    stripe_secret_key: str | None = field(default=None, repr=False)
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    # Keys of the seal a Checkout Session's metadata carries (reservation/session_metadata.py):
    # the first seals new sessions, every one verifies (rotation). Empty: checkout answers 503.
    session_secrets: tuple[str, ...] = field(default=(), repr=False)
    stripe_api_base: str | None = None
    hold_seconds: float = 600.0
    admin_token: str | None = field(default=None, repr=False)
    public_url: str = "http://127.0.0.1:8000"
    key_prefix: str = DEFAULT_PREFIX
    data_dir: str = ".reservation"
    reconcile_on_start: bool = True
    # How often each process checks that Redis still has its counters, rebuilding them from
    # MongoDB when it lost them (operations/recovery.py); 0: off, `reservation reconcile` by hand.
    rebuild_check_seconds: float = 1.0
    # The longest one Redis command may take (connecting included) before it is a 503.
    redis_timeout_seconds: float = 2.0
    # The Redis connections one process keeps at most (per node of a cluster); a command that
    # finds them all busy waits for one (reservation/redispool.py).
    redis_pool_size: int = 32
    # What one client may take (reservation/connections.py): the idle time between two
    # requests of a connection (uvicorn's keep-alive), the time a request's head and body may
    # take to arrive, the head's size, and the requests one process works on at once; of
    # those, the requests and the connections one client address may hold (0: no share).
    keep_alive_seconds: int = 75
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    max_header_bytes: int = 32 * 1024
    max_concurrent_requests: int = 4096
    # The bytes of request bodies one process holds at once while they arrive, all requests
    # together (reservation/api/bodybudget.py): 1,024 JSON bodies of 64 KiB, or 64 webhook
    # bodies of 1 MiB.
    max_body_bytes_in_flight: int = 64 * 1024 * 1024
    max_requests_per_client: int = 256
    max_connections_per_client: int = 1024
    # Stripe gate: concurrent calls, calls per second, and the longest a buyer waits.
    stripe_concurrency: int = 16
    stripe_rate_per_second: float = 25.0
    stripe_timeout_seconds: float = 10.0
    stripe_max_attempts: int = 3
    # How long a hold waits for a delayed payment method (completed, payment unpaid).
    awaiting_payment_seconds: float = 3 * 24 * 3600
    # Background sweeper interval; 0 turns it off. It expires the Checkout Sessions of lapsed
    # or released reservations, so a service that takes payments runs it by default.
    sweep_seconds: float = 30.0
    # How long this process answers "sold out" for a SKU without asking Redis again.
    sold_out_cache_seconds: float = 0.1
    # How long this process reuses a product read (GET /v1/products[/{sku}]) another process
    # may have changed since; its own writes are seen at once.
    read_cache_seconds: float = 0.1
    # Put refunded units back on sale (charge.refunded); off: a refund keeps them sold.
    restock_on_refund: bool = False
    # Refuse reservations without a customer_id of SKUs that have a per-customer limit.
    require_customer: bool = False
    # Rate limits of POST /v1/reservations and POST /v1/checkout, shared by every process (in
    # Redis): at most `*_rate_limit` requests in any `*_rate_window_seconds`, per client address
    # and per customer id (reservation/ratelimit.py); 0: off.
    ip_rate_limit: int = 120
    ip_rate_window_seconds: float = 60.0
    customer_rate_limit: int = 30
    customer_rate_window_seconds: float = 60.0
    # The most live holds (held, not paid) one customer id may have in a pool; 0: no cap.
    max_holds_per_customer: int = 5
    # The header a trusted reverse proxy writes the client's address into (its right-most
    # entry); None: the socket peer's address, and such headers are ignored.
    trusted_proxy_header: str | None = None
    # Log lines: "text" for people, "json" for one JSON object per line (reservation/logs.py).
    log_format: str = "text"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of `env` (default: os.environ); unset or empty variables keep their
        default. A value the service cannot use is a SettingsError naming its variable."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}  # each reader returns its field's type (tests hold it)
        for variable in VARIABLES:
            raw = env.get(variable.name, "").strip()
            if raw:
                values[variable.field] = variable.read(variable.name, raw)
        return replace(cls(), **values)


# -- how a variable's text is read: (variable name, non-empty text) -> value ----------------

Reader = Callable[[str, str], object]

FLAG_WORDS = {"1": True, "true": True, "yes": True, "on": True}
FLAG_WORDS.update({"0": False, "false": False, "no": False, "off": False})


def text(name: str, raw: str) -> str:
    return raw


def url(name: str, raw: str) -> str:
    """A base URL, without the trailing slash paths are appended to."""
    return raw.rstrip("/")


def flag(name: str, raw: str) -> bool:
    """1/true/yes/on or 0/false/no/off, in any case; anything else is refused."""
    try:
        return FLAG_WORDS[raw.lower()]
    except KeyError:
        raise SettingsError(
            f"{name} must be 1, true, yes or on (on) or 0, false, no or off (off), not {raw!r}"
        ) from None


# The largest count or number of seconds a variable takes: the scripts take counts (units,
# holds, requests) up to 10^12 and durations up to 10^15 ms, and refuse more.
MAX_VALUE = 10**12


def _number(name: str, raw: str, unit: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of {unit}, not {raw!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise SettingsError(f"{name} must be a positive, finite number of {unit}, not {raw!r}")
    if value > MAX_VALUE:
        raise SettingsError(f"{name} must be at most 10^12 {unit}, not {raw!r}")
    return value


def seconds(name: str, raw: str) -> float:
    """A positive number of seconds, at most 10^12."""
    return _number(name, raw, "seconds")


def seconds_or_off(name: str, raw: str) -> float:
    """A number of seconds where 0 turns the feature off."""
    try:
        if float(raw) == 0:
            return 0.0
    except ValueError:
        pass
    return seconds(name, raw)


def per_second(name: str, raw: str) -> float:
    return _number(name, raw, "calls per second")


def count(name: str, raw: str) -> int:
    """A whole number from 1 to 10^12."""
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, not {raw!r}")
    if value > MAX_VALUE:
        raise SettingsError(f"{name} must be at most 10^12, not {raw!r}")
    return value


def count_or_off(name: str, raw: str) -> int:
    """A whole number where 0 turns the feature off."""
    try:
        if int(raw) == 0:
            return 0
    except ValueError:
        pass
    return count(name, raw)


# A header name (RFC 9110 token characters).
HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


MIN_SESSION_SECRET = 32


def secret_list(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated secrets, newest first, each at least 32 characters."""
    secrets = tuple(part.strip() for part in raw.split(","))
    for secret in secrets:
        if len(secret) < MIN_SESSION_SECRET or not secret.isascii() or not secret.isprintable():
            raise SettingsError(
                f"{name} must be comma-separated secrets of at least {MIN_SESSION_SECRET}"
                " printable ASCII characters each (e.g. `python -c 'import secrets;"
                " print(secrets.token_urlsafe(32))'`)"
            )
    return secrets


def header_name(name: str, raw: str) -> str:
    """An HTTP header's name, as written (headers are matched in any case)."""
    if not HEADER_NAME.fullmatch(raw):
        raise SettingsError(
            f"{name} must be an HTTP header name, e.g. X-Forwarded-For, not {raw!r}"
        )
    return raw


def choice(*choices: str) -> Reader:
    """One of `choices`, in any case."""

    def read(name: str, raw: str) -> str:
        if raw.lower() not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
        return raw.lower()

    return read


# -- the table ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable: the field it sets, how it is read, and what it means."""

    name: str
    field: str
    read: Reader
    meaning: str  # Markdown (backticks), one sentence or two
    default: str | None = None  # how the default is told, when the field's value is not enough

    def shown_default(self) -> str:
        if self.default is not None:
            return self.default
        value = next(f.default for f in fields(Settings) if f.name == self.field)
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, str):
            return f"`{value}`"
        return str(value)


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
        "reservations and checkouts one client address may ask for within"
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
        "reservations and checkouts one `customer_id` may ask for within"
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
        "Stripe calls one process makes per second (test mode allows about 25)",
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
)


def markdown_table() -> str:
    """The README's table of variables."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    rows += [f"| `{v.name}` | {v.meaning} | {v.shown_default()} |" for v in VARIABLES]
    return "\n".join(rows)


def help_text(width: int = 78) -> str:
    """The variables as `reservation serve --help` lists them (click keeps `\\b` blocks as
    written)."""
    lines = [
        "Environment variables (the README's table says the same). Flags take 1, true, yes, on"
        " or 0, false, no, off, in any case; any other value is refused.",
        "",
        "\b",
    ]
    for v in VARIABLES:
        lines.append(v.name)
        told = f"{v.meaning}. Default: {v.shown_default()}.".replace("`", "")
        lines += textwrap.wrap(told, width, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines)
