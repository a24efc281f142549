"""Stripe webhooks: every event stored by its id, then dispatched through a handler registry.

Every handler is idempotent by Checkout Session / reservation id and every step converges,
so duplicates, retries and any delivery order end in the same state (the event matrix of
docs/design.md).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import stripe

from domain import errors
from domain.outcomes import CommittedLate, Oversold
from domain.rules import MAX_AMOUNT
from domain.statuses import CheckoutStatus, OrderStatus
from persistence.checkouts import CheckoutRepository
from persistence.events import StripeEventRepository
from persistence.orders import Order, OrderLine, OrderRepository
from persistence.products import ProductRepository
from persistence.refunds import PendingRefunds
from reservation.core.inventory import Inventory, pool_of_reservation
from reservation.logs import redact, secrets_of
from reservation.metrics import Metrics
from reservation.payments import session_metadata
from reservation.payments.gate import StripeGate
from reservation.payments.session_metadata import SessionCart
from reservation.settings import Settings

Event = dict[str, Any]
Handler = Callable[["WebhookHandlers", dict[str, Any]], Awaitable[str]]
SessionHandler = Callable[["WebhookHandlers", dict[str, Any], SessionCart], Awaitable[str]]
Run = Callable[[], Awaitable[str]]
REGISTRY: dict[str, Handler] = {}
SESSION_REGISTRY: dict[str, SessionHandler] = {}
LIVE_CHECKOUT = (CheckoutStatus.OPEN, CheckoutStatus.EXPIRING)
NOT_OURS = "not_ours"
MAX_CONTEXT = 255  # the longest id a log line quotes from an event
MAX_EMAIL = 320  # RFC 5321's longest address
CURRENCY = re.compile(r"[a-z]{3}")

logger = logging.getLogger("reservation.webhooks")
# What each outcome means for the sale, for the log line a person reads afterwards.
OUTCOMES = {
    "committed": "paid, units sold",
    "committed_late": "paid after the hold lapsed, units sold late",
    "refunded_oversold": "paid but no units left, payment refunded",
    "refunded": "refund recorded on the order",
    "refund_pending": "refund kept until its order is recorded",
    "awaiting_payment": "completed, hold kept for a delayed payment",
    "payment_failed": "delayed payment failed, hold released",
    "lapsed": "session expired, hold released",
    "recorded": "a payment attempt failed, hold kept for another try",
    "partial_refund": "partial refund, order unchanged",
    "no_payment_intent": "refund without a payment intent, ignored",
    NOT_OURS: "not a session of this service, acknowledged",
    "duplicate": "already processed, nothing done",
    "ignored": "an event type this service does not handle",
}
LOUD = {"committed_late": logging.WARNING, "refunded_oversold": logging.WARNING}


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


class NotOurs(Exception):
    """A Checkout Session this service did not make: acknowledged, nothing done."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _ignored() -> str:
    return "ignored"


def refund_key(session_id: str) -> str:
    """One refund per session, however often the payment event is delivered."""
    return f"refund-oversold-{session_id}"


@dataclass
class WebhookHandlers:
    settings: Settings
    inventory: Inventory
    orders: OrderRepository
    checkouts: CheckoutRepository
    products: ProductRepository
    events: StripeEventRepository
    pending_refunds: PendingRefunds
    stripe: stripe.StripeClient
    gate: StripeGate
    metrics: Metrics

    async def dispatch(self, event: Event) -> str:
        """Check the whole event, then record it and run its handler (again, if an earlier try
        did not finish). An event that fails the checks is refused (400) with nothing stored;
        a session this service did not make is recorded, and nothing else is done."""
        event_id, event_type = event["id"], event["type"]
        # Only the types this service handles become metric labels: the type is the sender's.
        label = event_type if event_type in REGISTRY or event_type in SESSION_REGISTRY else "other"
        context = event_context(event)
        try:
            run = await self.checked(event_type, event["data"]["object"])
        except NotOurs as exc:
            context["reason"] = exc.reason
            run = None
        if not await self.events.record(event_id, event_type, event):
            stored = await self.events.get(event_id)
            if stored is not None and stored.get("processed_at") is not None:
                self.metrics.webhooks.labels(label, "duplicate").inc()
                self.log_outcome(context, "duplicate")
                return "duplicate"
        try:
            outcome = NOT_OURS if run is None else await run()
        except Exception as exc:
            await self.failed(context, exc)
            raise
        await self.events.mark_processed(event_id, outcome)
        self.metrics.webhooks.labels(label, outcome).inc()
        self.log_outcome(context, outcome)
        return outcome

    async def checked(self, event_type: str, subject: dict[str, Any]) -> Run:
        """What the event's handler will do, once every field it acts on has been checked:
        InvalidPayload (400) for a field that cannot be, NotOurs for a session this service
        did not make. Nothing is stored or changed here."""
        session_handler = SESSION_REGISTRY.get(event_type)
        if session_handler is not None:
            cart = await self.owned_cart(subject)
            return lambda: session_handler(self, subject, cart)
        handler = REGISTRY.get(event_type)
        if handler is None:
            return _ignored
        _check_payment_intent(subject)
        return lambda: handler(self, subject)

    async def owned_cart(self, session: dict[str, Any]) -> SessionCart:
        """The cart of a Checkout Session this service made, checked whole.

        Ours is a session recorded under its reservation, or one whose metadata carries this
        service's seal (reservation/session_metadata.py) and whose reservation has no other
        recorded session: the seal covers a session whose checkout never got recorded (a
        process died between Stripe and MongoDB), the record covers one sealed with a secret
        rotated away (or made before sessions were sealed)."""
        metadata = session.get("metadata")
        if not isinstance(metadata, dict) or not session_metadata.carries_cart(metadata):
            raise NotOurs("its metadata carries no reservation")
        reservation_id = metadata["reservation_id"]
        if not isinstance(reservation_id, str) or len(reservation_id) > MAX_CONTEXT:
            raise NotOurs("its metadata's reservation_id is not one of ours")
        # One read says both: whether this session is the reservation's recorded one, and
        # whether the reservation has another (a session bearing a copy of its metadata).
        made = await self.checkouts.get_by_reservation(reservation_id)
        if made is not None:
            if made.session_id != session["id"]:
                raise NotOurs("its reservation has another Checkout Session")
        elif not session_metadata.is_sealed(metadata, self.settings.session_secrets):
            raise NotOurs("neither recorded nor sealed by this service")
        cart = session_metadata.decode(metadata)
        try:
            pool_of_reservation(cart.reservation_id)
        except errors.NotFound:
            raise errors.InvalidPayload("the metadata's reservation_id is not one") from None
        _check_session_fields(session)
        if session["amount_total"] != cart.amount_total:
            raise NotOurs("its amount_total is not its cart's price at checkout")
        catalog = await self.products.get_many(line.sku for line in cart.lines)
        unknown = sorted({line.sku for line in cart.lines} - set(catalog))
        if unknown:
            raise errors.InvalidPayload("the cart names SKUs not in the catalog", skus=unknown)
        return cart

    def log_outcome(self, context: dict[str, Any], outcome: str) -> None:
        told = OUTCOMES.get(outcome, outcome)
        if "reason" in context:
            told = f"{told} ({context['reason']})"
        logger.log(
            LOUD.get(outcome, logging.INFO),
            "webhook %s %s: %s",
            context["event_id"],
            context["event_type"],
            told,
            extra={**context, "outcome": outcome},
        )

    async def failed(self, context: dict[str, Any], exc: Exception) -> None:
        """Log the failure with its traceback and keep its reason on the event record; the
        event stays unprocessed and Stripe's redelivery runs the handler again."""
        reason = redact(f"{type(exc).__name__}: {exc}", secrets_of(self.settings))
        logger.error(
            "webhook %s %s failed, Stripe will deliver it again: %s",
            context["event_id"],
            context["event_type"],
            type(exc).__name__,
            exc_info=exc,
            extra={**context, "outcome": "failed"},
        )
        try:
            await self.events.mark_failed(context["event_id"], reason)
        except errors.StorageUnavailable:
            logger.warning(
                "the failure of webhook %s could not be stored: MongoDB did not answer",
                context["event_id"],
                extra=context,
            )

    # -- shared steps ------------------------------------------------------------------

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
                currency=_text(session.get("currency")) or "",
                customer_email=_email(email) or _email(session.get("customer_email")),
                payment_intent=_payment_intent(session),
            )
        )

    async def settle_payment(self, session: dict[str, Any], cart: SessionCart) -> str:
        """Paid: commit (or commit late); oversold: refund once and say so on the order."""
        # The status ladder never moves a refunded order back to paid: what comes back says
        # whether this payment was refunded already (then nothing may be committed again).
        recorded = await self.record_order(session, cart, OrderStatus.PAID)
        if recorded.status in (OrderStatus.REFUNDED_OVERSOLD, OrderStatus.REFUNDED):
            return recorded.status.value
        outcome = await self.inventory.commit(
            cart.reservation_id,
            items=[(line.sku, line.quantity) for line in cart.lines],
            customer_id=cart.customer_id,
        )
        await self.checkouts.move(session["id"], CheckoutStatus.COMPLETE, only_from=LIVE_CHECKOUT)
        if isinstance(outcome, Oversold):
            await self.refund(session)
            await self.record_order(session, cart, OrderStatus.REFUNDED_OVERSOLD)
            return "refunded_oversold"
        payment_intent = _payment_intent(session)
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
                await self.inventory.restock(order.reservation_id)
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

    async def refund(self, session: dict[str, Any]) -> None:
        payment_intent = _payment_intent(session)
        context = session_context(session)
        if payment_intent is None:
            logger.info(
                "oversold session %s charged nothing: no refund", session["id"], extra=context
            )
            return
        try:
            refund_id = await self._refund(session, payment_intent)
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

    async def _refund(self, session: dict[str, Any], payment_intent: str) -> str:
        refund = await self.gate.call(
            lambda: self.stripe.v1.refunds.create_async(
                {
                    "payment_intent": payment_intent,
                    "reason": "requested_by_customer",
                    "metadata": {"reason": "oversold", "checkout_session_id": session["id"]},
                },
                {"idempotency_key": refund_key(session["id"])},
            ),
            action="refund",
            context=session_context(session),
        )
        return refund.id

    async def release(self, reservation_id: str) -> None:
        with contextlib.suppress(errors.NotFound):  # Redis no longer has it: nothing is held
            await self.inventory.release(reservation_id)


def logged_cart(session: dict[str, Any]) -> SessionCart | None:
    """The reservation and cart a session's metadata names, for a log line only: whether the
    session is ours is `WebhookHandlers.owned_cart`'s to say."""
    metadata = session.get("metadata")
    if not isinstance(metadata, dict):
        return None
    try:
        return session_metadata.decode(metadata)
    except errors.InvalidPayload:
        return None


def session_context(session: dict[str, Any]) -> dict[str, Any]:
    """What a log line says about a Checkout Session: its id, and its reservation, SKUs and
    payment intent when it carries them."""
    context: dict[str, Any] = {"session_id": _bounded(session.get("id"))}
    cart = logged_cart(session)
    if cart is not None:
        context["reservation_id"] = cart.reservation_id
        context["skus"] = sorted({line.sku for line in cart.lines})
    payment_intent = _payment_intent(session)
    if payment_intent is not None:
        context["payment_intent"] = _bounded(payment_intent)
    return context


def event_context(event: Event) -> dict[str, Any]:
    """What a log line says about an event: its id and type, and what it is about."""
    event_type = str(event["type"])
    obj = event["data"]["object"]
    context: dict[str, Any] = {
        "event_id": _bounded(event["id"]),
        "event_type": _bounded(event_type),
    }
    if event_type.startswith("checkout.session."):
        return {**context, **session_context(obj)}
    payment_intent = _payment_intent(obj)
    if payment_intent is None and event_type.startswith("payment_intent."):
        payment_intent = _text(obj.get("id"))
    if payment_intent is not None:
        context["payment_intent"] = _bounded(payment_intent)
    return context


def _bounded(value: object) -> str | None:
    return None if value is None else str(value)[:MAX_CONTEXT]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _check_session_fields(session: dict[str, Any]) -> None:
    """Every field of a Checkout Session a handler reads, or stores on an order, is of its
    kind and within bounds (InvalidPayload, before anything is stored)."""
    amount = session.get("amount_total")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= MAX_AMOUNT:
        raise errors.InvalidPayload("the Checkout Session's amount_total is not an amount")
    currency = session.get("currency")
    if currency is not None and not (isinstance(currency, str) and CURRENCY.fullmatch(currency)):
        raise errors.InvalidPayload("the Checkout Session's currency is not a currency code")
    status = session.get("payment_status")
    if status is not None and not isinstance(status, str):
        raise errors.InvalidPayload("the Checkout Session's payment_status is not a status")
    _check_payment_intent(session)


def _check_payment_intent(obj: dict[str, Any]) -> None:
    value = _payment_intent_field(obj)
    if value is not None and not (isinstance(value, str) and 0 < len(value) <= MAX_CONTEXT):
        raise errors.InvalidPayload("the payment_intent is not an id")


def _email(value: object) -> str | None:
    """An email address as Stripe gives it; longer than any address can be: none."""
    text = _text(value)
    return text if text is not None and len(text) <= MAX_EMAIL else None


def _payment_intent_field(obj: dict[str, Any]) -> object:
    """The payment_intent field as sent: an id, or the id of an expanded object."""
    value = obj.get("payment_intent")
    return value.get("id") if isinstance(value, dict) else value


def _payment_intent(obj: dict[str, Any]) -> str | None:
    value = _payment_intent_field(obj)
    return value if isinstance(value, str) else None


@handles_session("checkout.session.completed")
async def session_completed(h: WebhookHandlers, session: dict[str, Any], cart: SessionCart) -> str:
    if session.get("payment_status") in ("paid", "no_payment_required"):
        return await h.settle_payment(session, cart)
    # A delayed payment method: keep the units until it succeeds or fails.
    with contextlib.suppress(errors.NotFound):  # if the payment comes, it takes the late path
        await h.inventory.extend(
            cart.reservation_id, hold_seconds=h.settings.awaiting_payment_seconds
        )
    await h.record_order(session, cart, OrderStatus.AWAITING_PAYMENT)
    await h.checkouts.move(session["id"], CheckoutStatus.COMPLETE, only_from=LIVE_CHECKOUT)
    return "awaiting_payment"


@handles_session("checkout.session.async_payment_succeeded")
async def async_payment_succeeded(
    h: WebhookHandlers, session: dict[str, Any], cart: SessionCart
) -> str:
    return await h.settle_payment(session, cart)


@handles_session("checkout.session.async_payment_failed")
async def async_payment_failed(
    h: WebhookHandlers, session: dict[str, Any], cart: SessionCart
) -> str:
    await h.release(cart.reservation_id)
    await h.record_order(session, cart, OrderStatus.PAYMENT_FAILED)
    await h.checkouts.move(session["id"], CheckoutStatus.COMPLETE, only_from=LIVE_CHECKOUT)
    return "payment_failed"


@handles_session("checkout.session.expired")
async def session_expired(h: WebhookHandlers, session: dict[str, Any], cart: SessionCart) -> str:
    await h.release(cart.reservation_id)  # a committed reservation refuses, and stays paid
    await h.checkouts.move(session["id"], CheckoutStatus.EXPIRED, only_from=LIVE_CHECKOUT)
    return "lapsed"


@handles("payment_intent.payment_failed")
async def payment_failed(h: WebhookHandlers, payment_intent: dict[str, Any]) -> str:
    # The buyer may try another card inside the same session: the hold stays.
    return "recorded"


@handles("charge.refunded")
async def charge_refunded(h: WebhookHandlers, charge: dict[str, Any]) -> str:
    if not charge.get("refunded"):
        return "partial_refund"
    payment_intent = _payment_intent(charge)
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
    if await h.refunded_as_oversold(payment_intent):
        # Our own refund too, come before its payment's handler said so on the order (or that
        # handler's process died in between; found by the worker-killed drill). Read as a
        # merchant's refund, the order would count units that were never sold.
        await h.orders.upsert(replace(order, status=OrderStatus.REFUNDED_OVERSOLD))
        return "refunded_oversold"
    await h.apply_refund(order)
    return "refunded"
