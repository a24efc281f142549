"""Checkout: a held reservation becomes a Stripe Checkout Session, priced from the catalog."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import cast

import stripe
from stripe.params.checkout import SessionCreateParams

from domain import errors
from domain.outcomes import Held
from domain.reservations import CartLine, Reservation, ReservationStatus
from domain.statuses import CheckoutStatus
from persistence.attempts import CheckoutAttempt, CheckoutAttempts
from persistence.checkouts import Checkout, CheckoutRepository
from persistence.products import ProductRepository
from reservation.api.schemas import CheckoutIn
from reservation.core.inventory import Inventory
from reservation.payments import session_metadata
from reservation.payments.expiry import SessionExpiry
from reservation.payments.gate import StripeGate
from reservation.payments.money import check_total
from reservation.payments.session_metadata import PaidLine
from reservation.settings import Settings

logger = logging.getLogger("reservation.checkout")
Priced = tuple[list[tuple[PaidLine, str]], str]
# Stripe accepts expires_at from 30 minutes to 24 hours ahead; keep clear of both edges.
MIN_SESSION = timedelta(minutes=30)
MAX_SESSION = timedelta(hours=24)
MARGIN = timedelta(minutes=2)
# An attempt still recorded this long after the gate's bound has no caller left to finish it.
ATTEMPT_GRACE = timedelta(seconds=10)
SESSION_STATUS = {
    "open": CheckoutStatus.OPEN,
    "complete": CheckoutStatus.COMPLETE,
    "expired": CheckoutStatus.EXPIRED,
}


def session_expiry(reservation: Reservation, now: datetime) -> datetime:
    """30 min + margin past the end of the hold, so at least max(hold expiry, now + 30 min +
    margin), and within Stripe's 24 hours.

    It depends on the reservation only, not on the clock: a retried checkout sends the very
    same parameters, and Stripe's idempotency hands back the same session (different parameters
    under one key would be refused).
    """
    wanted = reservation.expires_at + MIN_SESSION + MARGIN
    latest = reservation.created_at + MAX_SESSION - MARGIN
    if wanted <= latest:
        return wanted
    if latest >= now + MIN_SESSION + MARGIN:
        return latest
    return now + MIN_SESSION + MARGIN  # a hold of nearly a day: no fixed choice fits


def refused(exc: stripe.StripeError) -> errors.PaymentProviderRefused:
    """Stripe's own words about a permanent refusal, for the client (bounded when answered)."""
    error = exc.error
    return errors.PaymentProviderRefused(
        f"Stripe refused the Checkout Session: {type(exc).__name__}",
        stripe_status=exc.http_status,
        stripe_type=getattr(error, "type", None),
        stripe_code=exc.code,
        stripe_message=getattr(error, "message", None) or exc.user_message,
        stripe_param=getattr(error, "param", None),
    )


def _context(reservation: Reservation) -> dict[str, object]:
    return {
        "reservation_id": reservation.id,
        "skus": sorted({line.sku for line in reservation.items}),
    }


def _log_failure(reservation: Reservation, exc: Exception, released: bool) -> None:
    """One line for a checkout that made no session: what Stripe (or the cart) said, and
    whether the hold went back on sale."""
    hold = "hold released" if released else "hold kept: a concurrent checkout made a session"
    context = {**_context(reservation), "hold_released": released}
    if isinstance(exc, errors.PaymentProviderRefused):
        # Stripe's code, type and status; its message stays in the answer (it may quote input).
        logger.error(
            "Stripe refused the Checkout Session of %s, answered 502 (%s): %s %s",
            reservation.id,
            hold,
            exc.details.get("stripe_type"),
            exc.details.get("stripe_code"),
            extra={
                **context,
                "outcome": "stripe_refused",
                "stripe_status": exc.details.get("stripe_status"),
                "stripe_type": exc.details.get("stripe_type"),
                "stripe_code": exc.details.get("stripe_code"),
            },
        )
    elif isinstance(exc, errors.PaymentProviderUnavailable):
        logger.warning(
            "Stripe unavailable for the checkout of %s, answered 503 (%s): %s",
            reservation.id,
            hold,
            exc.message,
            extra={**context, "outcome": "stripe_unavailable"},
        )
    elif isinstance(exc, errors.ReservationError):
        logger.info(
            "checkout of %s refused, answered %d %s (%s)",
            reservation.id,
            exc.status_code,
            exc.code,
            hold,
            extra={**context, "outcome": exc.code},
        )
    else:  # the handler of unexpected errors logs its traceback
        logger.error(
            "checkout of %s failed: %s (%s)",
            reservation.id,
            type(exc).__name__,
            hold,
            extra={**context, "outcome": "failed"},
        )


def idempotency_key(reservation_id: str) -> str:
    """One Checkout Session per reservation, however often checkout is retried."""
    return f"checkout-session-{reservation_id}"


class CheckoutService:
    def __init__(
        self,
        *,
        settings: Settings,
        inventory: Inventory,
        products: ProductRepository,
        checkouts: CheckoutRepository,
        attempts: CheckoutAttempts,
        stripe_client: stripe.StripeClient,
        gate: StripeGate,
        expiry: SessionExpiry,
    ) -> None:
        self.settings = settings
        self.expiry = expiry
        self.inventory = inventory
        self.products = products
        self.checkouts = checkouts
        self.attempts = attempts
        self.stripe = stripe_client
        self.gate = gate

    async def start(self, request: CheckoutIn, reservation: Reservation | None = None) -> Checkout:
        """The session for this reservation (made once), or for a cart reserved right now.

        `reservation`: the caller's read of `request.reservation_id` a moment ago (the API's
        rate limit per customer needs it), so it is not read again."""
        if (request.reservation_id is None) == (request.items is None):
            raise errors.InvalidRequest("give either reservation_id or items, not both")
        priced: Priced | None = None
        if request.reservation_id is not None:
            if request.customer_id is not None:
                raise errors.InvalidRequest("customer_id belongs to the reservation already")
            if reservation is None or reservation.id != request.reservation_id:
                reservation = await self.inventory.get(request.reservation_id)
            existing = await self.checkouts.get_by_reservation(reservation.id)
            if existing is not None:
                logger.info(
                    "checkout of reservation %s: its session %s already exists",
                    reservation.id,
                    existing.session_id,
                    extra={"reservation_id": reservation.id, "session_id": existing.session_id},
                )
                return existing
            if reservation.status is not ReservationStatus.HELD:
                raise errors.ReservationNotHeld(
                    f"the reservation is {reservation.status.value}",
                    reservation_id=reservation.id,
                    status=reservation.status.value,
                )
            priced = await self._priced(reservation.items)
        else:
            assert request.items is not None
            # Reserved first: a sold-out crowd is refused by Redis alone, before any catalog
            # read. A cart that cannot be paid gives its hold straight back (below).
            outcome = await self.inventory.reserve(
                [(line.sku, line.quantity) for line in request.items],
                customer_id=request.customer_id,
            )
            if not isinstance(outcome, Held):
                raise outcome.error()
            reservation = outcome.reservation
        try:
            priced = priced or await self._priced(reservation.items)
            checkout = await self._create_session(reservation, priced, request.customer_email)
        except Exception as exc:
            # No session, no hold: the units go back to the crowd (unless a concurrent
            # checkout of the same reservation made its session meanwhile).
            released = await self._no_session_recorded(reservation.id)
            if released:
                await self.inventory.release(reservation.id)
            _log_failure(reservation, exc, released)
            raise
        try:
            stored = await self.checkouts.add(checkout)
        except errors.StorageUnavailable:
            await self._unrecorded(reservation, checkout)
            raise
        with contextlib.suppress(errors.StorageUnavailable):
            await self.attempts.finish(reservation.id)  # else the sweeper finds it recorded
        await self._released_meanwhile(reservation, stored)
        lines, currency = priced
        amount = sum(line.quantity * line.unit_amount for line, _ in lines)
        logger.info(
            "checkout session %s created for reservation %s: %d %s",
            stored.session_id,
            reservation.id,
            amount,
            currency,
            extra={
                **_context(reservation),
                "session_id": stored.session_id,
                "amount_total": amount,
                "currency": currency,
                "outcome": "session_created",
            },
        )
        return stored

    async def _released_meanwhile(self, reservation: Reservation, checkout: Checkout) -> None:
        """A DELETE of the hold that ran while its session was being made found no session to
        expire: this one is expired now rather than by the sweeper (409, nobody can pay it).

        The release reads the session record after releasing, and this reads the hold after
        recording the session: of the two, one always sees the other's write."""
        try:
            current = await self.inventory.get(reservation.id)
        except errors.ReservationError:
            return  # Redis forgot it or did not answer: the sweeper looks at this session later
        if current.status is not ReservationStatus.RELEASED:
            return
        result = await self.expiry.expire(checkout.session_id)
        if result.paid:
            return  # paid in between: its webhook takes the late path (commit or refund)
        logger.info(
            "checkout of %s: the hold was released while its session %s was made; session expired",
            reservation.id,
            checkout.session_id,
            extra={
                **_context(reservation),
                "session_id": checkout.session_id,
                "outcome": "released_meanwhile",
                "session_expired": result.expired,
            },
        )
        raise errors.ReservationNotHeld(
            "the reservation was released while its Checkout Session was being made",
            reservation_id=reservation.id,
            status=current.status.value,
        )

    async def _unrecorded(self, reservation: Reservation, checkout: Checkout) -> None:
        """Stripe made the session but MongoDB did not take it: the sweeper, which walks the
        recorded sessions, could never expire it. Unless a concurrent checkout of the same
        reservation recorded it meanwhile, it is expired at Stripe now (nobody can pay it) and
        the hold goes back on sale, as for any checkout that failed."""
        if not await self._no_session_recorded(reservation.id):
            return
        context = {**_context(reservation), "session_id": checkout.session_id}
        try:
            await self.gate.call(
                lambda: self.stripe.v1.checkout.sessions.expire_async(checkout.session_id),
                action="session expiry",
                context=context,
            )
            expired = True
        except (stripe.StripeError, errors.ReservationError):
            expired = False  # its payment, if any, takes the late path (commit or refund)
        with contextlib.suppress(errors.ReservationError):
            await self.inventory.release(reservation.id)
        logger.error(
            "Checkout Session %s of %s was made but MongoDB did not record it, answered 503:"
            " session %s, hold released",
            checkout.session_id,
            reservation.id,
            "expired"
            if expired
            else "NOT expired (Stripe did not answer; a payment of it takes the late path)",
            extra={**context, "outcome": "session_unrecorded", "session_expired": expired},
        )

    async def _no_session_recorded(self, reservation_id: str) -> bool:
        try:
            return await self.checkouts.get_by_reservation(reservation_id) is None
        except errors.StorageUnavailable:
            return True

    async def _create_session(
        self, reservation: Reservation, priced: Priced, email: str | None
    ) -> Checkout:
        """Write the attempt ahead, then ask Stripe: a process that dies in between leaves the
        attempt for the sweeper (`resume_stale`), which asks again under the same key."""
        lines, currency = priced
        if not (self.gate.configured and self.settings.session_secrets):
            # A session that cannot be sealed is one its own webhooks could not tell from a
            # stranger's (reservation/session_metadata.py): none is made.
            missing = "RESERVATION_SESSION_SECRET" if self.gate.configured else "STRIPE_SECRET_KEY"
            raise self.gate.unavailable(f"{missing} is not configured", sent=False)
        expires_at = session_expiry(reservation, datetime.now(UTC))
        attempt = CheckoutAttempt(
            reservation_id=reservation.id,
            idempotency_key=idempotency_key(reservation.id),
            params=dict(self._params(reservation, lines, currency, expires_at, email)),
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
        return _recorded(reservation.id, session)

    async def _send(self, attempt: CheckoutAttempt, action: str) -> stripe.checkout.Session:
        params = cast("SessionCreateParams", attempt.params)
        return await self.gate.call(
            lambda: self.stripe.v1.checkout.sessions.create_async(
                params, {"idempotency_key": attempt.idempotency_key}
            ),
            action=action,
            context={"reservation_id": attempt.reservation_id},
        )

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
                lambda: self.stripe.v1.checkout.sessions.retrieve_async(made.id),
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
        stored = await self.checkouts.add(_recorded(rid, session))
        await self.attempts.finish(rid)
        logger.warning(
            "recovered Checkout Session %s of %s (%s), which its checkout never recorded",
            stored.session_id,
            rid,
            session.status,
            extra={"reservation_id": rid, "session_id": stored.session_id},
        )
        return True

    async def _priced(self, items: Iterable[CartLine]) -> Priced:
        """Each line with its catalog price and name; the cart's one currency; a total Stripe
        accepts."""
        cart = list(items)
        catalog = await self.products.get_many(line.sku for line in cart)
        priced = []
        for line in cart:
            product = catalog.get(line.sku)
            if product is None:
                raise errors.UnknownSku(f"{line.sku} is not in the catalog", sku=line.sku)
            priced.append((PaidLine(line.sku, line.quantity, product.price), product.name))
        currencies = {catalog[line.sku].currency for line in cart}
        if len(currencies) != 1:
            raise errors.InvalidRequest(
                "a cart can only be paid in one currency", currencies=sorted(currencies)
            )
        currency = currencies.pop()
        check_total(sum(line.quantity * line.unit_amount for line, _ in priced), currency)
        return priced, currency

    def _params(
        self,
        reservation: Reservation,
        lines: list[tuple[PaidLine, str]],
        currency: str,
        expires_at: datetime,
        email: str | None,
    ) -> SessionCreateParams:
        public = self.settings.public_url
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": line.quantity,
                    "price_data": {
                        "currency": currency,
                        "unit_amount": line.unit_amount,
                        "product_data": {"name": name, "metadata": {"sku": line.sku}},
                    },
                }
                for line, name in lines
            ],
            "client_reference_id": reservation.id,
            "metadata": session_metadata.encode(
                reservation.id,
                [line for line, _ in lines],
                reservation.customer_id,
                self.settings.session_secrets[0],
            ),
            "payment_intent_data": {"metadata": {"reservation_id": reservation.id}},
            "expires_at": int(expires_at.timestamp()),
            "success_url": f"{public}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{public}/checkout/cancel?reservation_id={reservation.id}",
        }
        if email is not None:
            params["customer_email"] = email
        return params


def _recorded(reservation_id: str, session: stripe.checkout.Session) -> Checkout:
    """The record of a session Stripe made, in the status Stripe gave it."""
    return Checkout(
        reservation_id=reservation_id,
        session_id=session.id,
        url=session.url or "",
        expires_at=datetime.fromtimestamp(session.expires_at, UTC),
        status=SESSION_STATUS.get(session.status or "open", CheckoutStatus.OPEN),
    )
