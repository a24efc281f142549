"""A waiting list's values as the core answers them: a buyer's entry, and the list for its
operators (reservation/lua/waitlist.lua and waitlist_line.lua decide them;
reservation/core/waitlist.py asks)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

# waiting: in line; offered: units came back and are held for the buyer (the offer);
# lapsed: the offer lapsed unbought; left: left the line, was removed, the list was closed,
# or the offer was given back; bought: the offer was paid for.
WaiterStatus = Literal["waiting", "offered", "lapsed", "left", "bought"]


@dataclass(frozen=True, slots=True)
class Offer:
    """Units held for a buyer of the line: a reservation like any other (status held), to be
    checked out by its id before `expires_at`."""

    reservation_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class WaiterState:
    """A buyer's entry in a SKU's waiting list. `position` is 1 for the head, 0 unless
    waiting; `offer` once units were offered. `created`: this join made the entry (False: the
    buyer's own entry, joined again, or a read)."""

    sku: str
    customer_id: str
    status: WaiterStatus
    position: int
    quantity: int
    joined_at: datetime
    offer: Offer | None = None
    created: bool = False


@dataclass(frozen=True, slots=True)
class Waiter:
    """One entry of a line, as its operators see it."""

    customer_id: str
    quantity: int
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class LineState:
    """A SKU's waiting list now: `closed` by an operator; `waiting` entries in line; `offers`
    live (made, neither bought, given back nor lapsed); the first entries of the line, head
    first."""

    sku: str
    closed: bool
    waiting: int
    offers: int
    line: tuple[Waiter, ...]
