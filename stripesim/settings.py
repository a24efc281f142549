"""SimSettings: what one simulator instance is configured with."""

from __future__ import annotations

from dataclasses import dataclass

import stripe


@dataclass(frozen=True)
class SimSettings:
    """Settings of a simulator; every field has a default, so `SimSettings()` runs one."""

    # Where events are POSTed, signed with `webhook_secret` (both or neither).
    webhook_url: str | None = None
    webhook_secret: str | None = None
    # Base of the pay-page links (`session.url`); None: the address the request came in on.
    public_url: str | None = None
    # When set, a secret key not starting with it is refused (401), e.g. "sk_test_".
    api_key_prefix: str | None = None
    # The version events claim to be rendered in: the one the stripe library speaks.
    api_version: str = stripe.api_version
    webhook_attempts: int = 4
    webhook_retry_seconds: float = 0.2
    webhook_timeout_seconds: float = 10.0
    # How long a "hang" fault holds a request when the client never gives up.
    hang_seconds: float = 60.0
    # Refunds made through the API also emit `charge.refunded`, as Stripe does.
    refund_events: bool = True
    # How often open sessions past their `expires_at` are expired (0: never).
    expiry_sweep_seconds: float = 1.0
    # The request, event and delivery logs keep this many entries each (oldest dropped).
    log_limit: int = 100_000
    # Delivery chaos, as Stripe's own delivery behaves at its worst: this share of events is
    # delivered twice, and each delivery waits up to `delivery_delay_seconds` (drawn at random),
    # so events arrive late and out of order.
    duplicate_share: float = 0.0
    delivery_delay_seconds: float = 0.0
    # Every API answer waits this long (drawn at random between the two), like Stripe's own
    # latency (a Checkout Session takes a few hundred milliseconds to create).
    latency_seconds: tuple[float, float] = (0.0, 0.0)
    # Seed of the random draws above (None: a new one each run).
    chaos_seed: int | None = None

    def __post_init__(self) -> None:
        if self.webhook_url is not None and not self.webhook_secret:
            raise ValueError("a webhook URL needs a webhook secret to sign the events with")
        if self.webhook_attempts < 1:
            raise ValueError("webhook_attempts must be at least 1")
        if not 0.0 <= self.duplicate_share <= 1.0:
            raise ValueError("duplicate_share is a share: from 0 to 1")
        low, high = self.latency_seconds
        if self.delivery_delay_seconds < 0 or not 0 <= low <= high:
            raise ValueError("delays are seconds: at least 0, and latency low <= high")
