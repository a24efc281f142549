"""The reply of queue.lua: a ticket's state, or why there is none."""

from __future__ import annotations

from typing import Any, Literal, cast

from domain import errors
from domain.queue import TicketState, TicketStatus
from reservation.lua._pool import optional_ms, text


def decode(reply: Any, sku: str) -> TicketState | Literal["unknown_sku"]:
    """The ticket's state; "unknown_sku" when the pool has no counters for the SKU (the core
    decides whether Redis lost them). NoWaitingRoom and TicketNotFound are raised."""
    outcome = text(reply[0])
    if outcome == "unknown_sku":
        return "unknown_sku"
    if outcome == "no_room":
        raise errors.NoWaitingRoom(f"{sku} has no waiting room: hold it directly", sku=sku)
    if outcome == "no_ticket":
        raise errors.TicketNotFound(f"no such ticket in the waiting room of {sku}", sku=sku)
    _, ticket, status, position, wait, poll_after, token, expires = reply
    return TicketState(
        ticket=text(ticket),
        status=cast("TicketStatus", text(status)),
        position=int(position),
        estimated_wait_seconds=int(wait),
        poll_after_ms=int(poll_after),
        admission_token=text(token) or None,
        admission_expires_at=optional_ms(expires),
        created=outcome == "new",
    )
