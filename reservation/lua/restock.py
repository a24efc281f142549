"""The reply of restock.lua: the reservation as it stands after."""

from __future__ import annotations

from typing import Any

from domain.reservations import Reservation
from reservation.lua._pool import outcome, reservation


def decode(reply: Any, reservation_id: str, pool: str) -> Reservation:
    """The reservation, restocked (now released) or unchanged (it was not committed)."""
    outcome(reply, reservation_id, pool)
    return reservation(reply, reservation_id, pool)
