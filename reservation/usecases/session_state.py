"""Where a Checkout Session stands, for its buyer's success page: the session as this service
last heard of it, its hold, and its order once the payment's webhook landed."""

from __future__ import annotations

from dataclasses import dataclass

from domain import errors
from domain.reservations import Reservation
from persistence.checkouts import Checkout, CheckoutRepository
from persistence.orders import Order, OrderRepository
from reservation.core.inventory import Inventory

MAX_SESSION_ID = 255


@dataclass(frozen=True, slots=True)
class SessionState:
    checkout: Checkout
    reservation: Reservation | None  # None: Redis no longer knows it
    order: Order | None  # None: no payment's webhook yet

    @property
    def lines(self) -> list[tuple[str, int]]:
        """The cart as sku and quantity: the order's, else the hold's, else nothing known."""
        if self.order is not None:
            return [(line.sku, line.quantity) for line in self.order.items]
        if self.reservation is not None:
            return [(line.sku, line.quantity) for line in self.reservation.items]
        return []


async def session_state(
    checkouts: CheckoutRepository, orders: OrderRepository, inventory: Inventory, session_id: str
) -> SessionState:
    """The session, its hold and its order; NotFound for a session this service never made."""
    checkout = None
    if len(session_id) <= MAX_SESSION_ID:
        checkout = await checkouts.get(session_id)
    if checkout is None:
        raise errors.NotFound("no such Checkout Session", checkout_session_id=session_id)
    order = await orders.get(session_id)
    try:
        reservation = await inventory.holds.get(checkout.reservation_id)
    except errors.NotFound:
        reservation = None  # Redis no longer knows it (its record outlived its retention)
    return SessionState(checkout, reservation, order)
