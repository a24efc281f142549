"""The reply of reserve.lua as a typed outcome."""

from __future__ import annotations

from typing import Any, Literal

from domain import errors
from domain.outcomes import (
    AdmissionRefused,
    CustomerRequired,
    Held,
    NotOnSale,
    OutOfStock,
    OverCustomerLimit,
    OverHoldCap,
    ReserveOutcome,
)
from domain.reservations import CartLine, Reservation, ReservationStatus, from_epoch_ms
from reservation.lua._pool import NoCounters, optional_ms, reservation, text

ADMISSION_REFUSALS: dict[str, Literal["required", "invalid", "used"]] = {
    "admission_required": "required",
    "admission_invalid": "invalid",
    "admission_used": "used",
}


def decode(
    reply: Any,
    reservation_id: str,
    pool: str,
    lines: tuple[CartLine, ...],
    customer: str | None,
) -> ReserveOutcome | NoCounters:
    """The outcome of holding `lines` for `customer` under `reservation_id`; NoCounters for
    a SKU with a pool but no counters."""
    outcome = text(reply[0])
    if outcome == "held":
        # A new hold is what was asked: the script answers only its times.
        _, expires_at, created_at = reply
        held = Reservation(
            id=reservation_id,
            pool=pool,
            status=ReservationStatus.HELD,
            items=lines,
            customer_id=customer,
            expires_at=from_epoch_ms(int(expires_at)),
            created_at=from_epoch_ms(int(created_at)),
            committed_late=False,
        )
        return Held(held, created=True)
    if outcome == "existing":
        return Held(reservation(reply, reservation_id, pool), created=False)
    return _refusal(outcome, reply)


def _refusal(outcome: str, reply: Any) -> ReserveOutcome | NoCounters:
    if outcome == "insufficient":
        _, sku, requested, available, windowed = reply
        return OutOfStock(text(sku), int(requested), int(available), text(windowed) == "1")
    if outcome == "not_on_sale":
        _, sku, starts, ends = reply
        return NotOnSale(text(sku), optional_ms(starts), optional_ms(ends))
    if outcome == "customer_limit":
        _, sku, limit, already = reply
        return OverCustomerLimit(text(sku), int(limit), int(already))
    if outcome == "customer_required":
        return CustomerRequired(text(reply[1]))
    if outcome == "hold_cap":
        _, cap, held = reply
        return OverHoldCap(int(cap), int(held))
    if outcome == "unknown_sku":
        return NoCounters(text(reply[1]))
    if outcome in ADMISSION_REFUSALS:
        return AdmissionRefused(text(reply[1]), ADMISSION_REFUSALS[outcome])
    raise errors.InvalidRequest(f"refused by the reserve script: {text(reply[1])}")
