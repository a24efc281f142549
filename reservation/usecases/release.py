"""Releasing a reservation: its Checkout Session is expired first, then its units go back.

Expiring first closes the window in which the buyer could still pay for units that are back on
sale. If Stripe cannot be reached the units go back all the same and the sweeper expires the
session later (a payment meanwhile takes the late-payment path: committed if stock is free,
else refunded). If the buyer has already paid, nothing is released: the payment's webhook
commits the reservation.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain import errors
from domain.outcomes import ReleaseRefused
from domain.reservations import Reservation
from domain.statuses import CheckoutStatus
from persistence.checkouts import CheckoutRepository
from reservation.core.inventory import Inventory
from reservation.core.reservation_ids import pool_of_reservation
from reservation.customers.caller import ANYONE, Caller
from reservation.metrics import Metrics
from reservation.payments.expiry import SessionExpiry


@dataclass(frozen=True, slots=True)
class Release:
    reservation: Reservation
    checkout_session_id: str | None


async def release(
    inventory: Inventory,
    checkouts: CheckoutRepository,
    expiry: SessionExpiry,
    metrics: Metrics,
    reservation_id: str,
    caller: Caller = ANYONE,
) -> Release:
    """The reservation released (or as it was, if it was no longer held); AlreadyCommitted
    once it is paid for (counted in reservation_releases_total{outcome}). A verified
    customer's reservation is released by that customer alone (NotFound for anybody else)."""
    pool_of_reservation(reservation_id)  # a malformed id is a 404 before any lookup
    if caller.verifying:
        reservation = await inventory.holds.get(reservation_id)
        caller.check_owns(reservation_id, reservation.customer_id)
    checkout = await checkouts.get_by_reservation(reservation_id)
    if checkout is not None and checkout.status is CheckoutStatus.OPEN:
        expiry_result = await expiry.expire(checkout.session_id)
        if expiry_result.paid:
            raise errors.AlreadyCommitted(
                "the buyer has paid for this reservation; its order is being recorded",
                reservation_id=reservation_id,
                checkout_session_id=checkout.session_id,
            )
    outcome = await inventory.holds.release(reservation_id)
    if isinstance(outcome, ReleaseRefused):
        metrics.releases.labels("refused").inc()
        raise outcome.error()
    if checkout is None:
        # A checkout may have made its session meanwhile: read again after releasing (that
        # checkout reads the hold after recording its session, see CheckoutService), so a
        # session made for a released hold is expired now, not by the sweeper.
        checkout = await checkouts.get_by_reservation(reservation_id)
        if checkout is not None and checkout.status is CheckoutStatus.OPEN:
            await expiry.expire(checkout.session_id)
    metrics.releases.labels("released" if outcome.changed else "unchanged").inc()
    return Release(outcome.reservation, None if checkout is None else checkout.session_id)
