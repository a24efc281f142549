"""The reply of extend.lua as a typed outcome."""

from __future__ import annotations

from typing import Any

from domain.outcomes import Extended, ExtendOutcome, NotExtended
from reservation.lua._pool import outcome, reservation


def decode(reply: Any, reservation_id: str, pool: str) -> ExtendOutcome:
    """Extended, or not (the reservation is committed or no longer held)."""
    word = outcome(reply, reservation_id, pool)
    extended = reservation(reply, reservation_id, pool)
    return Extended(extended) if word == "extended" else NotExtended(extended)
