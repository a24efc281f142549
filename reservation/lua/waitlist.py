"""The reply of waitlist.lua: a buyer's entry in a SKU's waiting list, or why there is none."""

from __future__ import annotations

from typing import Any, Literal, cast

from domain import errors
from domain.outcomes import NotOnSale
from domain.reservations import from_epoch_ms
from domain.waitlist import Offer, WaiterState, WaiterStatus
from reservation.lua._pool import optional_ms, text

ENTRY_OUTCOMES = frozenset({"new", "again", "found", "left", "unchanged"})


def decode(reply: Any, sku: str, customer_id: str) -> WaiterState | int | Literal["unknown_sku"]:
    """The entry; the number of entries that left for a close; 0 for an open; "unknown_sku"
    when the pool has no counters for the SKU (the core decides whether Redis lost them). The
    refusals are raised."""
    outcome = text(reply[0])
    if outcome == "unknown_sku":
        return "unknown_sku"
    if outcome == "closed":
        return int(reply[1])
    if outcome == "opened":
        return 0
    if outcome == "not_in_line":
        raise errors.NotInLine(f"{customer_id} is not in the waiting list of {sku}", sku=sku)
    if outcome == "on_sale":
        raise errors.OnSale(
            f"{sku} has units to hold now: reserve it instead", sku=sku, available=int(reply[1])
        )
    if outcome == "not_on_sale":
        _, _, starts, ends = reply
        raise NotOnSale(sku, optional_ms(starts), optional_ms(ends)).error()
    if outcome == "list_closed":
        raise errors.WaitlistClosed(f"the waiting list of {sku} is closed", sku=sku)
    if outcome == "customer_limit":
        limit, already = int(reply[1]), int(reply[2])
        raise errors.CustomerLimitExceeded(
            f"at most {limit} of {sku} per customer", sku=sku, limit=limit, already=already
        )
    if outcome not in ENTRY_OUTCOMES:
        raise ValueError(f"waitlist.lua answered {outcome!r}")
    _, status, position, quantity, offer_id, expires, joined = reply
    offer = None
    if text(expires):
        offer = Offer(text(offer_id), from_epoch_ms(int(expires)))
    return WaiterState(
        sku=sku,
        customer_id=customer_id,
        status=cast("WaiterStatus", text(status)),
        position=int(position),
        quantity=int(quantity),
        joined_at=from_epoch_ms(int(joined)),
        offer=offer,
        created=outcome == "new",
    )
