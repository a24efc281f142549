"""Making a Checkout Session at Stripe, written ahead: the attempt (its parameters and
idempotency key) is recorded in MongoDB before Stripe is asked, so a process that dies in
between leaves it for the sweeper, which asks again under the same key and records what Stripe
made (`resume_stale`)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import stripe
from stripe.params.checkout import SessionCreateParams

from domain import errors
from domain.reservations import Reservation
from persistence.attempts import CheckoutAttempt, CheckoutAttempts
from persistence.checkouts import Checkout, CheckoutRepository
from reservation.payments.gate import StripeGate
from reservation.payments.sessions import (
    PricedCart,
    idempotency_key,
    refused,
    session_expiry,
    session_params,
    session_record,
)
from reservation.settings import Settings

logger = logging.getLogger("reservation.checkout")
# An attempt still recorded this long after the gate's bound has no caller left to finish it.
ATTEMPT_GRACE = timedelta(seconds=10)


@dataclass
class SessionMaker:
    """Checkout Sessions made at Stripe through the gate, each attempt written ahead."""

    settings: Settings
    attempts: CheckoutAttempts
    checkouts: CheckoutRepository
    stripe_client: stripe.StripeClient
    gate: StripeGate

    async def make(
        self, reservation: Reservation, priced: PricedCart, email: str | None
    ) -> Checkout:
        """Write the attempt ahead, then ask Stripe: a process that dies in between leaves the
        attempt for the sweeper (`resume_stale`), which asks again under the same key."""
        if not (self.gate.configured and self.settings.session_secrets):
            # A session that cannot be sealed is one its own webhooks could not tell from a
            # stranger's (reservation/session_metadata.py): none is made.
            missing = "RESERVATION_SESSION_SECRET" if self.gate.configured else "STRIPE_SECRET_KEY"
            raise self.gate.unavailable(f"{missing} is not configured", sent=False)
        expires_at = session_expiry(reservation, datetime.now(UTC))
        attempt = CheckoutAttempt(
            reservation_id=reservation.id,
            idempotency_key=idempotency_key(reservation.id),
            params=dict(
                session_params(
                    reservation,
                    priced,
                    expires_at=expires_at,
                    email=email,
                    public_url=self.settings.public_url,
                    session_secret=self.settings.session_secrets[0],
                )
            ),
            session_expires_at=expires_at,
        )
        recorded = await self.attempts.begin(attempt)
        try:
            session = await self._send(attempt, "checkout session")
        except errors.PaymentProviderUnavailable as exc:
            if recorded and not exc.sent:
                # Stripe never saw it (the gate's queue or rate ran out first): nothing to
                # recover. An attempt another caller recorded stays for that caller.
                with contextlib.suppress(errors.StorageUnavailable):
                    await self.attempts.finish(reservation.id)
            raise
        except stripe.StripeError as exc:
            # The gate let it through: not a network error, 5xx or 429 but a refusal (a
            # parameter, the key, the account) that no retry can mend. Stripe made nothing.
            with contextlib.suppress(errors.StorageUnavailable):
                await self.attempts.finish(reservation.id)
            raise refused(exc) from exc
        if session.url is None:
            raise self.gate.unavailable("the Checkout Session came back without a URL")
        return session_record(reservation.id, session)

    async def _send(self, attempt: CheckoutAttempt, action: str) -> stripe.checkout.Session:
        params = cast("SessionCreateParams", attempt.params)
        return await self.gate.call(
            lambda: self.stripe_client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": attempt.idempotency_key}
            ),
            action=action,
            context={"reservation_id": attempt.reservation_id},
        )

    async def recorded(self, reservation_id: str) -> None:
        """The session is recorded: its attempt is done (else the sweeper finds it recorded)."""
        with contextlib.suppress(errors.StorageUnavailable):
            await self.attempts.finish(reservation_id)

    async def expire_unrecorded(self, session_id: str, context: dict[str, object]) -> bool:
        """Expire at Stripe a session MongoDB never recorded; whether Stripe did."""
        try:
            await self.gate.call(
                lambda: self.stripe_client.v1.checkout.sessions.expire_async(session_id),
                action="session expiry",
                context=context,
            )
        except (stripe.StripeError, errors.ReservationError):
            return False  # its payment, if any, takes the late path (commit or refund)
        return True

    async def resume_stale(self) -> int:
        """Finish the checkout attempts nobody is finishing (the process died between Stripe
        and MongoDB, or Stripe never answered): each session Stripe made is recorded, so the
        sweeper can expire it once its hold is gone. The number recorded."""
        before = datetime.now(UTC) - timedelta(seconds=self.gate.timeout_seconds) - ATTEMPT_GRACE
        recovered = 0
        for attempt in await self.attempts.older_than(before):
            if await self._resume(attempt):
                recovered += 1
        return recovered

    async def _resume(self, attempt: CheckoutAttempt) -> bool:
        rid = attempt.reservation_id
        if attempt.session_expires_at <= datetime.now(UTC):
            # Any session made under it has expired at Stripe; a payment before that came (or
            # comes) as a webhook, which needs no record here.
            await self.attempts.finish(rid)
            return False
        try:
            made = await self._send(attempt, "checkout session recovery")
            # The replay is the first answer; what became of the session since is Stripe's now.
            session = await self.gate.call(
                lambda: self.stripe_client.v1.checkout.sessions.retrieve_async(made.id),
                action="session retrieval",
                context={"reservation_id": rid, "session_id": made.id},
            )
        except stripe.IdempotencyError as exc:
            # The first request is still running at Stripe (or, never meant, other parameters).
            logger.warning(
                "checkout attempt of %s not recovered yet: %s",
                rid,
                exc.user_message or type(exc).__name__,
                extra={"reservation_id": rid},
            )
            return False
        except stripe.StripeError:
            # Refused: a session made under this key would have been handed back instead.
            await self.attempts.finish(rid)
            return False
        except errors.PaymentProviderUnavailable:
            return False  # the next sweep asks again
        stored = await self.checkouts.add(session_record(rid, session))
        await self.attempts.finish(rid)
        logger.warning(
            "recovered Checkout Session %s of %s (%s), which its checkout never recorded",
            stored.session_id,
            rid,
            session.status,
            extra={"reservation_id": rid, "session_id": stored.session_id},
        )
        return True
