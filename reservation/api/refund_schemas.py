"""The bodies of the refused-refund routes (docs/api.md, *Refunds Stripe refused*)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from domain.statuses import OrderStatus

Note = Annotated[str, Meta(max_length=500)]


class FailedRefundView(Struct):
    """An oversold payment's refund Stripe refused for good: Stripe's last error, the tries
    made, when the sweeper tries again (`retries_until`: then only an admin does)."""

    checkout_session_id: str
    payment_intent: str
    order_status: OrderStatus | None
    state: str  # failed, refunded (a later try or a Dashboard refund went through), settled
    code: str | None  # Stripe's error code (e.g. charge_disputed)
    message: str  # Stripe's error message
    attempts: int
    first_failed_at: str
    last_failed_at: str
    next_attempt_at: str
    retries_until: str
    settled_note: str | None


class FailedRefundList(Struct):
    data: list[FailedRefundView]  # the refunds still refused, oldest first


class SettleIn(Struct, forbid_unknown_fields=True):
    """POST /v1/refunds/{checkout_session_id}/settle's body (optional): what was done."""

    note: Note | None = None
