"""Configuration: one frozen value, read from the environment variables the README lists."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from reservation.keys import DEFAULT_PREFIX


class SettingsError(ValueError):
    """A configuration variable has a value the service cannot use."""


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise SettingsError(f"{name} must be a positive, finite number of seconds")
    return value


def _non_negative(env: Mapping[str, str], name: str, default: float) -> float:
    """A number of seconds where 0 means off."""
    raw = env.get(name)
    if raw is not None and raw.strip() in ("0", "0.0"):
        return 0.0
    return _positive(env, name, default)


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first when unset)."""
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service is configured with; secrets stay out of repr()."""

    redis_url: str | None = None  # None: embedded (fakeredis, one process only)
    redis_cluster: bool = False
    mongodb_uri: str | None = field(default=None, repr=False)  # None: embedded nx-27017
    mongodb_database: str = "reservation"
    stripe_secret_key: str | None = field(default=None, repr=False)
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    stripe_api_base: str | None = None
    hold_seconds: float = 600.0
    admin_token: str | None = field(default=None, repr=False)
    public_url: str = "http://127.0.0.1:8000"
    key_prefix: str = DEFAULT_PREFIX
    data_dir: str = ".reservation"
    reconcile_on_start: bool = True
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
    # Log lines: "text" for people, "json" for one JSON object per line (reservation/logs.py).
    log_format: str = "text"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            redis_url=env.get("REDIS_URL") or None,
            redis_cluster=env.get("REDIS_CLUSTER", "") in ("1", "true", "yes"),
            mongodb_uri=env.get("MONGODB_URI") or None,
            mongodb_database=env.get("MONGODB_DATABASE") or "reservation",
            stripe_secret_key=env.get("STRIPE_SECRET_KEY") or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            hold_seconds=_positive(env, "RESERVATION_HOLD_SECONDS", 600.0),
            admin_token=env.get("RESERVATION_ADMIN_TOKEN") or None,
            public_url=(env.get("PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            key_prefix=env.get("RESERVATION_KEY_PREFIX") or DEFAULT_PREFIX,
            data_dir=env.get("RESERVATION_DATA_DIR") or ".reservation",
            stripe_rate_per_second=_positive(env, "STRIPE_RATE_PER_SECOND", 25.0),
            stripe_timeout_seconds=_positive(env, "STRIPE_TIMEOUT_SECONDS", 10.0),
            sweep_seconds=_non_negative(env, "RESERVATION_SWEEP_SECONDS", 30.0),
            sold_out_cache_seconds=_non_negative(env, "RESERVATION_SOLD_OUT_CACHE_SECONDS", 0.1),
            read_cache_seconds=_non_negative(env, "RESERVATION_READ_CACHE_SECONDS", 0.1),
            restock_on_refund=env.get("RESERVATION_RESTOCK_ON_REFUND", "") in ("1", "true", "yes"),
            require_customer=env.get("RESERVATION_REQUIRE_CUSTOMER", "") in ("1", "true", "yes"),
            log_format=_choice(env, "RESERVATION_LOG_FORMAT", ("text", "json")),
        )
