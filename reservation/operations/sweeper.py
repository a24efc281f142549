"""The sweeper: gives back lapsed holds of quiet pools, and expires the Checkout Sessions of
reservations that lapsed while their session was still open (so nobody pays for a hold that is
gone). Correctness never depends on it: every script reclaims lapsed holds by itself.
It also records the sessions of checkouts that never recorded them (their process died between
Stripe and MongoDB), first, so the same pass expires those whose hold is gone; and asks Stripe
again for the oversold refunds it refused whose next try is due (within the retry window).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from domain import errors
from domain.reservations import ReservationStatus
from domain.statuses import CheckoutStatus
from persistence.checkouts import Checkout, CheckoutRepository
from reservation.core.inventory import Inventory
from reservation.operations.background import every
from reservation.payments.expiry import SessionExpiry
from reservation.usecases.checkout import CheckoutService
from reservation.usecases.webhooks import StripeWebhooks

logger = logging.getLogger("reservation.sweeper")
LAPSED = (ReservationStatus.EXPIRED, ReservationStatus.RELEASED)


class SweepTargets(Protocol):
    """What a sweep works on (reservation.services.Services has it)."""

    @property
    def inventory(self) -> Inventory: ...
    @property
    def checkouts(self) -> CheckoutRepository: ...
    @property
    def expiry(self) -> SessionExpiry: ...
    @property
    def checkout(self) -> CheckoutService: ...
    @property
    def webhooks(self) -> StripeWebhooks: ...


@dataclass(frozen=True, slots=True)
class SweepReport:
    reclaimed_holds: int
    expired_sessions: int
    recovered_sessions: int = 0
    refunds_retried: int = 0


async def sweep(services: SweepTargets) -> SweepReport:
    """One pass over every pool and every open Checkout Session."""
    reclaimed = 0
    for pool in await services.inventory.pools.stocked():
        reclaimed += await services.inventory.holds.reclaim(pool)
    recovered = await services.checkout.sessions.resume_stale()
    expired = 0
    for checkout in await services.checkouts.list_open():
        if await _expire_if_lapsed(services, checkout):
            expired += 1
    return SweepReport(reclaimed, expired, recovered, await retry_refunds(services))


async def retry_refunds(services: SweepTargets) -> int:
    """Try again each refused refund that is due: how many were tried. Stripe unavailable
    (503) leaves one for the next pass; refused again, it is due again later (backoff)."""
    payments = services.webhooks.payments
    due = await payments.failed_refunds.due(services.webhooks.settings.refund_retry_window_seconds)
    for failed in due:
        try:
            outcome = await payments.retry_refund(failed)
        except errors.PaymentProviderUnavailable:
            continue  # logged by the gate; still due on the next pass
        logger.info(
            "sweep: refused refund of session %s tried again: %s",
            failed.checkout_session_id,
            outcome,
            extra={"session_id": failed.checkout_session_id, "outcome": outcome},
        )
    return len(due)


async def _expire_if_lapsed(services: SweepTargets, checkout: Checkout) -> bool:
    """Expire the session if its reservation lapsed; True if this call expired it."""
    if checkout.status is CheckoutStatus.OPEN and not await _lapsed(services, checkout):
        return False
    return (await services.expiry.expire(checkout.session_id)).expired


async def _lapsed(services: SweepTargets, checkout: Checkout) -> bool:
    try:
        reservation = await services.inventory.holds.get(checkout.reservation_id)
    except errors.NotFound:
        return True  # Redis lost it: no hold stands behind this session
    return reservation.status in LAPSED


async def run_periodically(services: SweepTargets, interval_seconds: float) -> None:
    """The in-app sweeper task: one pass every interval, errors logged, until cancelled."""

    async def step() -> None:
        report = await sweep(services)
        if report.reclaimed_holds or report.expired_sessions or report.recovered_sessions:
            logger.info(
                "sweep: %d holds reclaimed, %d sessions expired, %d unrecorded sessions recovered",
                report.reclaimed_holds,
                report.expired_sessions,
                report.recovered_sessions,
            )

    await every(interval_seconds, step, logger=logger, what="sweep", wait_first=True)
