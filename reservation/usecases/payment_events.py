"""What each Stripe event does to a sale: the steps its handlers share (record the order,
settle a payment, refund), and the handlers, registered by event type.

Every handler is idempotent by Checkout Session / reservation id and every step converges,
so duplicates, retries and any delivery order end in the same state (the event matrix of
docs/design.md). usecases/webhooks.py verifies, records and dispatches each event to them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import stripe
from stripe import StripeError

from domain import errors
from domain.outcomes import CommittedLate, Oversold
from domain.statuses import CheckoutStatus, OrderStatus
from persistence.checkouts import CheckoutRepository
from persistence.orders import Order, OrderLine, OrderRepository
from persistence.refunds import REFUNDED, SETTLED, FailedRefund, FailedRefunds, PendingRefunds
from reservation.core.inventory import Inventory
from reservation.metrics import Metrics
from reservation.payments.events import email_of, payment_intent_of, session_context, text_of
from reservation.payments.gate import StripeGate
from reservation.payments.session_metadata import SessionCart
from reservation.settings import Settings

Handler = Callable[["PaymentEvents", dict[str, Any]], Awaitable[str]]
SessionHandler = Callable[["PaymentEvents", dict[str, Any], SessionCart], Awaitable[str]]
REGISTRY: dict[str, Handler] = {}
SESSION_REGISTRY: dict[str, SessionHandler] = {}
LIVE_CHECKOUT = (CheckoutStatus.OPEN, CheckoutStatus.EXPIRING)
# Stripe's answers about the payment that no retry of the same request changes (400/404, 402,
# 403). 429/5xx are the gate's PaymentProviderUnavailable (503); 401, a key problem of this
# service, not of the payment, fails the webhook (500) and Stripe redelivers until it is fixed.
REFUSED_FOR_GOOD = (stripe.InvalidRequestError, stripe.CardError, stripe.PermissionError)
# An oversold order whose refund is not done: a redelivered payment changes nothing.
REFUND_OPEN = (OrderStatus.REFUND_FAILED, OrderStatus.REFUND_SETTLED)

logger = logging.getLogger("reservation.webhooks")


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for event_type in event_types:
            REGISTRY[event_type] = handler
        return handler

    return register


def handles_session(*event_types: str) -> Callable[[SessionHandler], SessionHandler]:
    """Register a handler of Checkout Session events: it runs with the session's checked cart,
    and only for sessions this service made."""

    def register(handler: SessionHandler) -> SessionHandler:
        for event_type in event_types:
            SESSION_REGISTRY[event_type] = handler
        return handler

    return register


def refund_key(session_id: str) -> str:
    """One refund per session, however often the payment event is delivered."""
    return f"refund-oversold-{session_id}"


@dataclass
class PaymentEvents:
    """The steps the handlers share, on the stores and Stripe."""

    settings: Settings
    inventory: Inventory
    orders: OrderRepository
    checkouts: CheckoutRepository
    pending_refunds: PendingRefunds
    failed_refunds: FailedRefunds
    stripe: stripe.StripeClient
    gate: StripeGate
    metrics: Metrics

    async def record_order(
        self, session: dict[str, Any], cart: SessionCart, status: OrderStatus
    ) -> Order:
        details = session.get("customer_details")
        email = details.get("email") if isinstance(details, dict) else None
        return await self.orders.upsert(
            Order(
                checkout_session_id=session["id"],
                reservation_id=cart.reservation_id,
                status=status,
                items=tuple(OrderLine(x.sku, x.quantity, x.unit_amount) for x in cart.lines),
                amount_total=session["amount_total"],  # Stripe's, equal to the cart's (checked)
                currency=text_of(session.get("currency")) or "",
                customer_email=email_of(email) or email_of(session.get("customer_email")),
                payment_intent=payment_intent_of(session),
                customer_id=cart.customer_id,
            )
        )

    async def settle_payment(self, session: dict[str, Any], cart: SessionCart) -> str:
        """Paid: commit (or commit late); oversold: refund once and say so on the order."""
        # The status ladder never moves a refunded order back to paid: what comes back says
        # whether this payment was refunded already (then nothing may be committed again).
        recorded = await self.record_order(session, cart, OrderStatus.PAID)
        if recorded.status in (OrderStatus.REFUNDED_OVERSOLD, OrderStatus.REFUNDED, *REFUND_OPEN):
            return recorded.status.value
        outcome = await self.inventory.holds.commit(
            cart.reservation_id,
            items=[(line.sku, line.quantity) for line in cart.lines],
            customer_id=cart.customer_id,
        )
        await self.checkouts.move(session["id"], CheckoutStatus.COMPLETE, only_from=LIVE_CHECKOUT)
        if isinstance(outcome, Oversold):
            return await self.refund_oversold(session, cart)
        payment_intent = payment_intent_of(session)
        if payment_intent is not None and await self.pending_refunds.exists(payment_intent):
            # Its refund was delivered first: the order is born refunded.
            await self.apply_refund(await self.record_order(session, cart, OrderStatus.REFUNDED))
            return "refunded"
        return "committed_late" if isinstance(outcome, CommittedLate) else "committed"

    async def apply_refund(self, order: Order) -> None:
        """The order is refunded; its units go back on sale only if configured."""
        await self.orders.upsert(replace(order, status=OrderStatus.REFUNDED))
        restocked = False
        if self.settings.restock_on_refund:
            # Redis may have forgotten the reservation (retention, a rebuild): nothing to
            # restock then; `reconcile` counts from the orders, where the refund is recorded.
            with contextlib.suppress(errors.NotFound):
                await self.inventory.holds.restock(order.reservation_id)
                restocked = True
        logger.info(
            "order of session %s refunded: units %s",
            order.checkout_session_id,
            "back on sale" if restocked else "kept sold",
            extra={
                "session_id": order.checkout_session_id,
                "reservation_id": order.reservation_id,
                "skus": sorted({line.sku for line in order.items}),
                "payment_intent": order.payment_intent,
                "restocked": restocked,
            },
        )

    async def refund_oversold(self, session: dict[str, Any], cart: SessionCart) -> str:
        """Refund a payment nothing was left for; a refund Stripe refuses for good is recorded
        (refund_failed, Stripe's error kept) and the event acknowledged: the sweeper retries it
        with backoff, an admin retries or settles it (POST /v1/refunds/...)."""
        try:
            await self.refund(session)
        except REFUSED_FOR_GOOD as exc:
            await self.refund_refused(session["id"], payment_intent_of(session) or "", exc)
            await self.record_order(session, cart, OrderStatus.REFUND_FAILED)
            return "refund_failed"
        await self.record_order(session, cart, OrderStatus.REFUNDED_OVERSOLD)
        return "refunded_oversold"

    async def refund_refused(
        self, session_id: str, payment_intent: str, exc: StripeError
    ) -> FailedRefund:
        code = exc.code if isinstance(exc.code, str) else None
        message = exc.user_message if isinstance(exc.user_message, str) else str(exc)
        failed = await self.failed_refunds.refused(
            session_id, payment_intent, code, message, self.settings.refund_retry_seconds
        )
        self.metrics.refunds_refused.labels(code or "none").inc()
        logger.error(
            "Stripe refused the refund of oversold session %s (try %d): %s %s; next try at %s",
            session_id,
            failed.attempts,
            code,
            message,
            failed.next_attempt_at.isoformat(),
            extra={
                "session_id": session_id,
                "payment_intent": payment_intent,
                "stripe_code": code,
                "attempts": failed.attempts,
            },
        )
        return failed

    async def retry_refund(self, failed: FailedRefund) -> str:
        """Ask Stripe again for a refused refund: `refunded_oversold` when done, `refund_failed`
        when refused again (recorded, next try later). A retry is a new request: Stripe keeps a
        refused answer under its Idempotency-Key, and a refund made twice is refused as
        charge_already_refunded (then it is done)."""
        session_id = failed.checkout_session_id
        session = {"id": session_id, "payment_intent": failed.payment_intent}
        key = f"{refund_key(session_id)}-retry-{failed.attempts}"
        try:
            await self.refund(session, key)
        except REFUSED_FOR_GOOD as exc:
            await self.refund_refused(session_id, failed.payment_intent, exc)
            return OrderStatus.REFUND_FAILED.value
        await self.refund_closed(session_id, OrderStatus.REFUNDED_OVERSOLD)
        return OrderStatus.REFUNDED_OVERSOLD.value

    async def refund_closed(
        self, session_id: str, status: OrderStatus, note: str | None = None
    ) -> Order | None:
        """The order's refund is done (refunded_oversold) or settled by hand (refund_settled)."""
        order = await self.orders.get(session_id)
        if order is not None:
            order = await self.orders.upsert(replace(order, status=status))
        state = SETTLED if status is OrderStatus.REFUND_SETTLED else REFUNDED
        await self.failed_refunds.close(session_id, state, note)
        return order

    async def refund(self, session: dict[str, Any], key: str | None = None) -> None:
        payment_intent = payment_intent_of(session)
        context = session_context(session)
        if payment_intent is None:
            logger.info(
                "oversold session %s charged nothing: no refund", session["id"], extra=context
            )
            return
        try:
            refund_id = await self._refund(session, payment_intent, key)
        except stripe.InvalidRequestError as exc:
            if exc.code != "charge_already_refunded":
                raise
            # Refunded already (by us on an earlier try, or from the Dashboard): done.
            logger.info("oversold session %s was refunded already", session["id"], extra=context)
            return
        logger.warning(
            "refund %s issued for session %s: no units left to sell",
            refund_id,
            session["id"],
            extra={**context, "refund_id": refund_id},
        )

    async def refunded_as_oversold(self, payment_intent: str) -> bool:
        """Whether a refund of this payment is one this service made for an oversold payment
        (its metadata says so): Stripe's word, asked only for refunds of paid orders."""
        refunds = await self.gate.call(
            lambda: self.stripe.v1.refunds.list_async({"payment_intent": payment_intent}),
            action="refund lookup",
            context={"payment_intent": payment_intent},
        )
        return any(
            refund.metadata is not None and refund.metadata.to_dict().get("reason") == "oversold"
            for refund in refunds.data
        )

    async def _refund(self, session: dict[str, Any], payment_intent: str, key: str | None) -> str:
        refund = await self.gate.call(
            lambda: self.stripe.v1.refunds.create_async(
                {
                    "payment_intent": payment_intent,
                    "reason": "requested_by_customer",
                    "metadata": {"reason": "oversold", "checkout_session_id": session["id"]},
                },
                {"idempotency_key": key or refund_key(session["id"])},
            ),
            action="refund",
            context=session_context(session),
        )
        return refund.id

    async def release(self, reservation_id: str) -> None:
        with contextlib.suppress(errors.NotFound):  # Redis no longer has it: nothing is held
            await self.inventory.holds.release(reservation_id)


@handles_session("checkout.session.completed")
async def session_completed(h: PaymentEvents, session: dict[str, Any], cart: SessionCart) -> str:
    if session.get("payment_status") in ("paid", "no_payment_required"):
        return await h.settle_payment(session, cart)
    # A delayed payment method: keep the units until it succeeds or fails.
    with contextlib.suppress(errors.NotFound):  # if the payment comes, it takes the late path
        await h.inventory.holds.extend(
            cart.reservation_id, hold_seconds=h.settings.awaiting_payment_seconds
        )
    await h.record_order(session, cart, OrderStatus.AWAITING_PAYMENT)
    await h.checkouts.move(session["id"], CheckoutStatus.COMPLETE, only_from=LIVE_CHECKOUT)
    return "awaiting_payment"


@handles_session("checkout.session.async_payment_succeeded")
async def async_payment_succeeded(
    h: PaymentEvents, session: dict[str, Any], cart: SessionCart
) -> str:
    return await h.settle_payment(session, cart)


@handles_session("checkout.session.async_payment_failed")
async def async_payment_failed(h: PaymentEvents, session: dict[str, Any], cart: SessionCart) -> str:
    await h.release(cart.reservation_id)
    await h.record_order(session, cart, OrderStatus.PAYMENT_FAILED)
    await h.checkouts.move(session["id"], CheckoutStatus.COMPLETE, only_from=LIVE_CHECKOUT)
    return "payment_failed"


@handles_session("checkout.session.expired")
async def session_expired(h: PaymentEvents, session: dict[str, Any], cart: SessionCart) -> str:
    await h.release(cart.reservation_id)  # a committed reservation refuses, and stays paid
    await h.checkouts.move(session["id"], CheckoutStatus.EXPIRED, only_from=LIVE_CHECKOUT)
    return "lapsed"


@handles("payment_intent.payment_failed")
async def payment_failed(h: PaymentEvents, payment_intent: dict[str, Any]) -> str:
    # The buyer may try another card inside the same session: the hold stays.
    return "recorded"


@handles("charge.refunded")
async def charge_refunded(h: PaymentEvents, charge: dict[str, Any]) -> str:
    if not charge.get("refunded"):
        return "partial_refund"
    payment_intent = payment_intent_of(charge)
    if payment_intent is None:
        return "no_payment_intent"
    order = await h.orders.get_by_payment_intent(payment_intent)
    if order is None:
        # Maybe its order is not recorded yet (events come in any order): keep the refund.
        await h.pending_refunds.add(payment_intent)
        # The payment's handler records the order, then looks for a kept refund; it may have
        # looked before this one was kept. Looking for the order again after keeping it means
        # one of the two handlers always sees the other's write, and applies the refund.
        order = await h.orders.get_by_payment_intent(payment_intent)
        if order is None:
            return "refund_pending"
    if order.status is OrderStatus.REFUNDED_OVERSOLD:
        return "refunded_oversold"  # our own refund of a unit we could not sell
    if order.status in REFUND_OPEN:
        # A payment we could not serve, whose refund Stripe had refused: refunded now (a retry,
        # or by hand from the Dashboard). Its units were never sold: nothing to restock.
        await h.refund_closed(order.checkout_session_id, OrderStatus.REFUNDED_OVERSOLD)
        return "refunded_oversold"
    if await h.refunded_as_oversold(payment_intent):
        # Our own refund too, come before its payment's handler said so on the order (or that
        # handler's process died in between; found by the worker-killed drill). Read as a
        # merchant's refund, the order would count units that were never sold.
        await h.orders.upsert(replace(order, status=OrderStatus.REFUNDED_OVERSOLD))
        return "refunded_oversold"
    await h.apply_refund(order)
    return "refunded"
