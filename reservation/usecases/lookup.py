"""Reading one reservation (GET /v1/reservations/{id}): as it stands, with its Checkout Session."""

from __future__ import annotations

from dataclasses import dataclass

from domain.reservations import Reservation
from persistence.checkouts import CheckoutRepository
from reservation.core.inventory import Inventory
from reservation.customers.caller import Caller


@dataclass(frozen=True, slots=True)
class Found:
    reservation: Reservation
    checkout_session_id: str | None


async def look_up(
    inventory: Inventory, checkouts: CheckoutRepository, caller: Caller, reservation_id: str
) -> Found:
    """The reservation and its session's id; NotFound if there is none, or if it is a verified
    customer's and `caller` is somebody else."""
    reservation = await inventory.holds.get(reservation_id)
    caller.check_owns(reservation.id, reservation.customer_id)
    checkout = await checkouts.get_by_reservation(reservation.id)
    return Found(reservation, None if checkout is None else checkout.session_id)
