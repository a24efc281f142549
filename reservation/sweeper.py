"""The sweeper: gives back lapsed holds of quiet pools, and expires the Checkout Sessions of
reservations that lapsed while their session was still open (so nobody pays for a hold that is
gone). Correctness never depends on it: every script reclaims lapsed holds by itself.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import stripe

from persistence.checkouts import Checkout, CheckoutStatus
from reservation import errors
from reservation.api.services import Services
from reservation.models import ReservationStatus

logger = logging.getLogger("reservation.sweeper")
LAPSED = (ReservationStatus.EXPIRED, ReservationStatus.RELEASED)


@dataclass(frozen=True, slots=True)
class SweepReport:
    reclaimed_holds: int
    expired_sessions: int


async def sweep(services: Services) -> SweepReport:
    """One pass over every pool and every open Checkout Session."""
    reclaimed = 0
    for pool in await services.inventory.pools():
        reclaimed += await services.inventory.reclaim(pool)
    expired = 0
    for checkout in await services.checkouts.list_open():
        if await _expire_if_lapsed(services, checkout):
            expired += 1
    return SweepReport(reclaimed, expired)


async def _expire_if_lapsed(services: Services, checkout: Checkout) -> bool:
    if checkout.status is CheckoutStatus.OPEN:
        try:
            reservation = await services.inventory.get(checkout.reservation_id)
            lapsed = reservation.status in LAPSED
        except errors.NotFound:
            lapsed = True  # Redis lost it: no hold stands behind this session
        if not lapsed:
            return False
        # Claim it, so that of several sweepers only one asks Stripe.
        claimed = await services.checkouts.move(
            checkout.session_id, CheckoutStatus.EXPIRING, only_from=(CheckoutStatus.OPEN,)
        )
        if not claimed:
            return False
    session_id = checkout.session_id
    client = services.stripe.v1.checkout.sessions
    try:
        await services.gate.call(lambda: client.expire_async(session_id))
        final = CheckoutStatus.EXPIRED
    except stripe.InvalidRequestError:
        # Completed or expired already (the buyer paid just now, or Stripe expired it): fine.
        session = await services.gate.call(lambda: client.retrieve_async(session_id))
        final = CheckoutStatus.COMPLETE if session.status == "complete" else CheckoutStatus.EXPIRED
    except errors.PaymentProviderUnavailable:
        return False  # stays claimed as expiring: the next pass tries again
    await services.checkouts.move(session_id, final, only_from=(CheckoutStatus.EXPIRING,))
    return final is CheckoutStatus.EXPIRED


async def run_periodically(services: Services, interval_seconds: float) -> None:
    """The in-app sweeper task: one pass every interval, errors logged, until cancelled."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            report = await sweep(services)
        except errors.ReservationError as exc:
            logger.warning("sweep failed: %s", exc.message)
            continue
        if report.reclaimed_holds or report.expired_sessions:
            logger.info(
                "sweep: %d holds reclaimed, %d sessions expired",
                report.reclaimed_holds,
                report.expired_sessions,
            )
