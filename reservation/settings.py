"""Configuration: one frozen value, read from the environment by one table of variables.

`VARIABLES` (reservation/env_variables.py) names every environment variable, the `Settings`
field it sets, how its text is read (reservation/env_readers.py) and what it means.
`Settings.from_env` reads that table and nothing else reads the environment; the README's table
(`markdown_table`) and `reservation serve --help` (`help_text`) are written from it, and
tests/test_settings.py holds the three together.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from reservation.env_readers import SettingsError
from reservation.env_variables import VARIABLES, Variable

# Every Redis key of the service starts with this (RESERVATION_KEY_PREFIX; core/keys.py).
DEFAULT_PREFIX = "rsv"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service is configured with; secrets stay out of repr()."""

    redis_url: str | None = None  # None: embedded (fakeredis, one process only)
    redis_cluster: bool = False
    mongodb_uri: str | None = field(default=None, repr=False)  # None: embedded nx-27017
    mongodb_database: str = "reservation"
    stripe_secret_key: str | None = field(default=None, repr=False)
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    # Keys of the seal a Checkout Session's metadata carries
    # (reservation/payments/session_metadata.py): the first seals new sessions, every one
    # verifies (rotation). Empty: checkout answers 503.
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
    # finds them all busy waits for one (reservation/stores/connection_queue.py).
    redis_pool_size: int = 32
    # What one client may take (reservation/server/limits.py): the idle time between two
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
    # Server-Sent Events of a product's stock (reservation/api/stock_events.py): the streams one
    # process keeps open at once (they do not count as requests in flight), and how often an
    # idle stream sends a keep-alive comment.
    max_streams: int = 10_000
    stream_keepalive_seconds: float = 15.0
    # Cache-Control of the product reads (GET /v1/products[/{sku}]), so that a CDN can answer
    # the crowd's polling; "" sends none.
    product_cache_control: str = "public, max-age=1"
    # Stripe gate: concurrent calls (per process), calls per second (every process together,
    # shared in Redis), and the longest a buyer waits.
    stripe_concurrency: int = 16
    stripe_rate_per_second: float = 25.0
    stripe_timeout_seconds: float = 10.0
    stripe_max_attempts: int = 3
    # How long a hold waits for a delayed payment method (completed, payment unpaid).
    awaiting_payment_seconds: float = 3 * 24 * 3600
    # Background sweeper interval; 0 turns it off. It expires the Checkout Sessions of lapsed
    # or released reservations, so a service that takes payments runs it by default.
    sweep_seconds: float = 30.0
    # A refund Stripe refused for good: the sweeper tries again after this, doubling up to an
    # hour, for as long as the window lasts since the first refusal; then an admin decides.
    refund_retry_seconds: float = 60.0
    refund_retry_window_seconds: float = 24 * 3600
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
    # and per customer id (reservation/core/ratelimit.py); 0: off.
    ip_rate_limit: int = 120
    ip_rate_window_seconds: float = 60.0
    customer_rate_limit: int = 30
    customer_rate_window_seconds: float = 60.0
    # The most live holds (held, not paid) one customer id may have in a pool; 0: no cap.
    max_holds_per_customer: int = 5
    # The header a trusted reverse proxy writes the client's address into (its right-most
    # entry); None: the socket peer's address, and such headers are ignored.
    trusted_proxy_header: str | None = None
    # Customer tokens (reservation/customers/): the key that verifies them, one of an HS256
    # secret, a PEM public key (RS256/ES256) or a JWKS URL; none: customer ids are not verified.
    customer_token_secret: str | None = field(default=None, repr=False)
    customer_token_public_key: str | None = field(default=None, repr=False)
    customer_jwks_url: str | None = None
    customer_token_audience: str = "reservation"
    customer_token_issuer: str | None = None
    customer_token_leeway_seconds: float = 30.0
    # The waiting list (reservation/env_waitlist.py): how long an offer is held; where the shop
    # receives its webhooks, the secret they are signed with, how long one delivery may take,
    # and how often the outbox moves and sends them (0: off).
    offer_seconds: int = 600
    shop_webhook_url: str | None = None
    shop_webhook_secret: str | None = field(default=None, repr=False)
    shop_webhook_timeout_seconds: float = 10.0
    outbox_interval_seconds: float = 1.0
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

    @property
    def verifies_customers(self) -> bool:
        """Whether a key of customer tokens is configured: customer ids are then verified."""
        return any(self._customer_keys())

    def check(self) -> None:
        """Refuse settings whose variables contradict each other (SettingsError)."""
        if sum(1 for key in self._customer_keys() if key) > 1:
            raise SettingsError(
                "set at most one of RESERVATION_CUSTOMER_TOKEN_SECRET,"
                " RESERVATION_CUSTOMER_TOKEN_PUBLIC_KEY and RESERVATION_CUSTOMER_JWKS_URL"
            )
        if self.shop_webhook_url and not self.shop_webhook_secret:
            raise SettingsError(
                "RESERVATION_SHOP_WEBHOOK_URL is set but RESERVATION_SHOP_WEBHOOK_SECRET is not:"
                " the shop's webhooks are always signed"
            )

    @property
    def outbox_lease_seconds(self) -> float:
        """How long the outbox's lease lasts unrenewed: a step (one delivery's timeout at
        most) and the next interval fit in it twice over."""
        return 2 * (self.shop_webhook_timeout_seconds + self.outbox_interval_seconds)

    def _customer_keys(self) -> tuple[str | None, ...]:
        return (self.customer_token_secret, self.customer_token_public_key, self.customer_jwks_url)


def shown_default(variable: Variable) -> str:
    """The default of `variable` as the README and `--help` tell it."""
    value = next(f.default for f in fields(Settings) if f.name == variable.field)
    return variable.shown_default(value)


def markdown_table() -> str:
    """The README's table of variables."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    rows += [f"| `{v.name}` | {v.meaning} | {shown_default(v)} |" for v in VARIABLES]
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
        told = f"{v.meaning}. Default: {shown_default(v)}.".replace("`", "")
        lines += textwrap.wrap(told, width, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines)
