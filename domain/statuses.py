"""The statuses the service records and answers: an order's and a Checkout Session's.

Defined here, below both the storage that writes them (persistence/) and the HTTP schemas that
answer them (reservation/api/schemas.py), so each says the same values without importing the
other. A reservation's status lives with the reservation (domain/reservations.py).
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PAID = "paid"
    AWAITING_PAYMENT = "awaiting_payment"
    PAYMENT_FAILED = "payment_failed"
    # An oversold payment whose refund Stripe refused for good (persistence/refunds.py keeps
    # Stripe's error); the sweeper retries it for a bounded time, an admin retries or settles it.
    REFUND_FAILED = "refund_failed"
    REFUND_SETTLED = "refund_settled"  # an admin settled it by hand (outside this service)
    REFUNDED = "refunded"
    REFUNDED_OVERSOLD = "refunded_oversold"


class CheckoutStatus(StrEnum):
    OPEN = "open"
    EXPIRING = "expiring"  # a sweeper claimed it and is asking Stripe to expire it
    EXPIRED = "expired"
    COMPLETE = "complete"
