"""Checkout: a held reservation, or a cart held right now, becomes a Stripe Checkout Session
priced from the catalog (reservation/payments/sessions.py makes its parameters)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from domain import errors
from domain.reservations import CartLine, Reservation, ReservationStatus
from persistence.checkouts import Checkout, CheckoutRepository
from persistence.products import ProductRepository
from reservation.core.inventory import Inventory
from reservation.core.ratelimit import RateLimiter
from reservation.customers.caller import ANYONE, Caller
from reservation.metrics import Metrics
from reservation.payments.expiry import SessionExpiry
from reservation.payments.session_maker import SessionMaker
from reservation.payments.sessions import (
    PricedCart,
    price,
)
from reservation.settings import Settings
from reservation.usecases.hold import Hold, HoldRequest
from reservation.usecases.limits import limit_client, limit_customer

logger = logging.getLogger("reservation.checkout")


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    """Either `reservation_id` (a held reservation) or `items` (held first, then checked out);
    `caller`: who asks (a verified customer checks out only their own reservations)."""

    reservation_id: str | None = None
    items: tuple[CartLine, ...] | None = None
    customer_id: str | None = None
    customer_email: str | None = None
    caller: Caller = ANYONE
    admission_token: str | None = None  # with `items` of a SKU whose waiting room is on


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


@dataclass
class CheckoutService:
    settings: Settings
    inventory: Inventory
    products: ProductRepository
    checkouts: CheckoutRepository
    sessions: SessionMaker
    expiry: SessionExpiry
    hold: Hold
    rate_limiter: RateLimiter
    metrics: Metrics

    async def limit_client(self, address: str) -> None:
        """Count a checkout against its client address, before its body is read: a client
        past its limit is refused without a byte of it buffered."""
        try:
            await limit_client(self.rate_limiter, address)
        except errors.RateLimited as exc:
            self.metrics.checkouts.labels(exc.code).inc()
            raise

    async def start(self, request: CheckoutRequest) -> Checkout:
        """The session for this reservation (made once), or for a cart held right now; counted
        by outcome (reservation_checkouts_total), and its cart's hold once its session is made
        (the holds per second of /ops)."""
        try:
            checkout = await self._start(request)
        except errors.ReservationError as exc:
            self.metrics.checkouts.labels(exc.code).inc()
            raise
        self.metrics.checkouts.labels("session").inc()
        if request.items is not None:
            self.metrics.holds_per_second.add()  # a cart was held for this session just now
        return checkout

    async def _start(self, request: CheckoutRequest) -> Checkout:
        if (request.reservation_id is None) == (request.items is None):
            raise errors.InvalidRequest("give either reservation_id or items, not both")
        if request.items is not None:
            # Held first (usecases/hold.py): a sold-out crowd is refused by Redis alone (or
            # the sold-out memory), before any catalog read. A cart that cannot be paid gives
            # its hold straight back (in `_session_for`).
            held = await self.hold(
                HoldRequest(
                    items=request.items,
                    customer_id=request.customer_id,
                    caller=request.caller,
                    for_checkout=True,
                    admission_token=request.admission_token,
                )
            )
            return await self._session_for(held.reservation, None, request.customer_email)
        assert request.reservation_id is not None
        request.caller.acting_for(request.customer_id)  # a body id without its token: refused
        if request.customer_id is not None:
            raise errors.InvalidRequest("customer_id belongs to the reservation already")
        reservation = await self.inventory.holds.get(request.reservation_id)
        request.caller.check_owns(reservation.id, reservation.customer_id)
        # Asking again for the session of a reservation is a request of its customer too.
        await limit_customer(self.rate_limiter, reservation.customer_id)
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
        priced = await price(self.products, reservation.items)
        return await self._session_for(reservation, priced, request.customer_email)

    async def _session_for(
        self, reservation: Reservation, priced: PricedCart | None, email: str | None
    ) -> Checkout:
        """Make, record and return the reservation's session; with no session made, the hold
        goes back on sale."""
        try:
            priced = priced or await price(self.products, reservation.items)
            checkout = await self.sessions.make(reservation, priced, email)
        except Exception as exc:
            # No session, no hold: the units go back to the crowd (unless a concurrent
            # checkout of the same reservation made its session meanwhile).
            released = await self._no_session_recorded(reservation.id)
            if released:
                await self.inventory.holds.release(reservation.id)
            _log_failure(reservation, exc, released)
            raise
        try:
            stored = await self.checkouts.add(checkout)
        except errors.StorageUnavailable:
            await self._unrecorded(reservation, checkout)
            raise
        await self.sessions.recorded(reservation.id)
        await self._released_meanwhile(reservation, stored)
        logger.info(
            "checkout session %s created for reservation %s: %d %s",
            stored.session_id,
            reservation.id,
            priced.amount,
            priced.currency,
            extra={
                **_context(reservation),
                "session_id": stored.session_id,
                "amount_total": priced.amount,
                "currency": priced.currency,
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
            current = await self.inventory.holds.get(reservation.id)
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
        expired = await self.sessions.expire_unrecorded(checkout.session_id, context)
        with contextlib.suppress(errors.ReservationError):
            await self.inventory.holds.release(reservation.id)
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
