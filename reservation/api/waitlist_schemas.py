"""The bodies of the waiting-list routes (docs/api.md, *Waiting lists*), as msgspec structs, in
the terms of reservation/api/schemas.py (its types and rules)."""

from __future__ import annotations

from msgspec import Struct

from domain.waitlist import WaiterStatus
from reservation.api.schemas import CustomerId, Quantity


class WaitlistIn(Struct, forbid_unknown_fields=True):
    """POST /v1/waitlist/{sku}'s body: the units wanted, and the buyer as for a reservation."""

    quantity: Quantity
    customer_id: CustomerId | None = None


class OfferView(Struct):
    """Units held for the buyer: a reservation, checked out by its id before `expires_at`."""

    reservation_id: str
    expires_at: str


class WaitlistEntryView(Struct):
    """A buyer's entry in a SKU's waiting list."""

    sku: str
    customer_id: str
    status: WaiterStatus
    position: int  # 1 for the head of the line; 0 unless waiting
    quantity: int
    joined_at: str
    offer: OfferView | None  # once units were offered (also after it lapsed or was bought)


class WaiterView(Struct):
    customer_id: str
    quantity: int
    joined_at: str


class WaitlistLineView(Struct):
    """GET /v1/waitlist/{sku} (admin): a SKU's waiting list now."""

    sku: str
    closed: bool  # by an operator: nobody joins until it is opened
    waiting: int  # entries in line
    offers: int  # live offers: made, neither bought, given back nor lapsed
    line: list[WaiterView]  # the first 100 entries, head first


class WaitlistClosedView(Struct):
    sku: str
    closed: bool
    removed: int  # entries that were waiting and left the line


class WaitlistOpenView(Struct):
    sku: str
    closed: bool
