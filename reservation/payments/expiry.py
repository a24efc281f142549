"""Expiring a Checkout Session at Stripe, so nobody pays for a hold that is gone.

A release does it at once; the sweeper does it for reservations that lapsed, and again for any
session a release could not expire (Stripe unreachable). Each session is claimed first
(compare-and-set with a lease), so of several callers only one asks Stripe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import stripe

from domain import errors
from domain.statuses import CheckoutStatus
from persistence.checkouts import CheckoutRepository
from reservation.payments.gate import StripeGate

logger = logging.getLogger("reservation.expiry")
# A claim older than this belongs to a caller that died mid-way; another may take it over.
CLAIM_LEASE = timedelta(minutes=2)
PAID = ("paid", "no_payment_required")


@dataclass(frozen=True, slots=True)
class Expiry:
    """What became of one attempt: `expired` by this call; `paid` (Stripe says the buyer paid
    before it could be expired); or neither: expired before, claimed by another caller, or
    Stripe unreachable (the claim is given back and the sweeper tries again)."""

    expired: bool = False
    paid: bool = False


class SessionExpiry:
    def __init__(
        self, checkouts: CheckoutRepository, stripe_client: stripe.StripeClient, gate: StripeGate
    ) -> None:
        self.checkouts = checkouts
        self.stripe = stripe_client
        self.gate = gate

    async def expire(self, session_id: str) -> Expiry:
        """Expire an open session at Stripe, once, and record what Stripe says."""
        if not await self.checkouts.claim_for_expiry(session_id, CLAIM_LEASE):
            return Expiry()
        sessions = self.stripe.v1.checkout.sessions
        try:
            try:
                await self.gate.call(
                    lambda: sessions.expire_async(session_id),
                    action="session expiry",
                    context={"session_id": session_id},
                )
            except stripe.InvalidRequestError:
                # Completed or expired already (the buyer paid just now, or Stripe expired it).
                try:
                    session = await self.gate.call(
                        lambda: sessions.retrieve_async(session_id),
                        action="session retrieval",
                        context={"session_id": session_id},
                    )
                except stripe.InvalidRequestError:
                    # Stripe does not know it (another account, a test clock): nobody can pay.
                    await self._settle(session_id, CheckoutStatus.EXPIRED)
                    return Expiry()
                if session.status == "open":
                    # Refused for another reason, yet still payable: the next sweep tries again.
                    await self._settle(session_id, CheckoutStatus.OPEN)
                    return Expiry()
                complete = session.status == "complete"
                final = CheckoutStatus.COMPLETE if complete else CheckoutStatus.EXPIRED
                await self._settle(session_id, final)
                return Expiry(paid=complete and session.payment_status in PAID)
        except errors.PaymentProviderUnavailable as exc:
            logger.warning(
                "could not expire Checkout Session %s now: %s",
                session_id,
                exc.message,
                extra={"session_id": session_id},
            )
            await self._settle(session_id, CheckoutStatus.OPEN)  # the next sweep tries again
            return Expiry()
        except stripe.StripeError as exc:
            # Refused for good as far as this request can tell (a revoked key, a permission):
            # as when Stripe is down, the session stays open for the sweeper, and an operator
            # must look. The release goes on; a payment meanwhile takes the late path.
            logger.error(
                "Stripe refused to expire Checkout Session %s: %s (%s)",
                session_id,
                type(exc).__name__,
                exc.user_message or "no message",
                extra={"session_id": session_id, "stripe_status": exc.http_status},
            )
            await self._settle(session_id, CheckoutStatus.OPEN)
            return Expiry()
        await self._settle(session_id, CheckoutStatus.EXPIRED)
        logger.info("expired Checkout Session %s", session_id, extra={"session_id": session_id})
        return Expiry(expired=True)

    async def _settle(self, session_id: str, status: CheckoutStatus) -> None:
        await self.checkouts.move(session_id, status, only_from=(CheckoutStatus.EXPIRING,))
