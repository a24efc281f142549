"""The reply of room.lua: a SKU's waiting room as its operators see it."""

from __future__ import annotations

from typing import Any, Literal

from domain import errors
from domain.queue import Admission, RoomState
from domain.reservations import from_epoch_ms
from reservation.lua._pool import decode_room, optional_ms, text


def _admission(raw: Any) -> Admission:
    ticket, admitted, expires, used, reservation_id, _ = text(raw).split("|", 5)
    return Admission(
        ticket,
        from_epoch_ms(int(admitted)),
        from_epoch_ms(int(expires)),
        optional_ms(used),
        reservation_id or None,
    )


def decode(reply: Any, sku: str) -> RoomState | Literal["unknown_sku"]:
    """The room's state, its admissions oldest first; "unknown_sku" when the pool has no
    counters for the SKU. NoWaitingRoom is raised."""
    outcome = text(reply[0])
    if outcome == "unknown_sku":
        return "unknown_sku"
    if outcome == "no_room":
        raise errors.NoWaitingRoom(f"{sku} has no waiting room", sku=sku)
    _, room, started, waiting, active, *log = reply
    waiting_room = decode_room(room)
    if waiting_room is None:  # the script answers a room it could read
        raise errors.StorageUnavailable("the waiting room could not be read", sku=sku)
    admissions = sorted(
        (_admission(entry) for entry in log[1::2]),
        key=lambda admission: (admission.admitted_at, admission.ticket),
    )
    return RoomState(
        sku, waiting_room, text(started) == "1", int(waiting), int(active), tuple(admissions)
    )
