"""A waiting room's values as the core answers them: a ticket's state, and the room's state for
its operators (reservation/lua/queue.lua and room.lua decide them; reservation/core/rooms.py
asks)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from domain.products import WaitingRoom

TicketStatus = Literal["waiting", "admitted", "sold_out", "expired"]


@dataclass(frozen=True, slots=True)
class TicketState:
    """Where a ticket stands. `position` is 1-based among the tickets still waiting (0 once
    admitted or expired); `admission_token` and `admission_expires_at` are set only while
    `status` is "admitted". `created`: this join made the ticket (False: the buyer's own
    ticket, joined again, or a poll)."""

    ticket: str
    status: TicketStatus
    position: int
    estimated_wait_seconds: int
    poll_after_ms: int
    admission_token: str | None = None
    admission_expires_at: datetime | None = None
    created: bool = False


@dataclass(frozen=True, slots=True)
class Admission:
    """One admission of a room, as its log keeps it (`used_at` and `reservation_id`: the hold
    it made, None until then)."""

    ticket: str
    admitted_at: datetime
    expires_at: datetime
    used_at: datetime | None
    reservation_id: str | None


@dataclass(frozen=True, slots=True)
class RoomState:
    """A SKU's waiting room now: `started` once the fair start's shuffle is done; `waiting`
    tickets in line; `active` admissions live (admitted, not used, not expired); every
    admission made, oldest first."""

    sku: str
    waiting_room: WaitingRoom
    started: bool
    waiting: int
    active: int
    admissions: tuple[Admission, ...]

    @property
    def admitted(self) -> int:
        return len(self.admissions)

    @property
    def used(self) -> int:
        return sum(1 for admission in self.admissions if admission.used_at is not None)
