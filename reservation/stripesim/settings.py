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

    def __post_init__(self) -> None:
        if self.webhook_url is not None and not self.webhook_secret:
            raise ValueError("a webhook URL needs a webhook secret to sign the events with")
        if self.webhook_attempts < 1:
            raise ValueError("webhook_attempts must be at least 1")
