"""Stripe webhooks: a delivery verified (its signature, then that it is no replay), its event
stored by its id, then dispatched to its handler (usecases/payment_events.py), its outcome
counted and logged."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from domain import errors
from persistence.checkouts import CheckoutRepository
from persistence.events import StripeEventRepository
from persistence.products import ProductRepository
from reservation.core.deliveries import SeenDeliveries
from reservation.logs import redact, secrets_of
from reservation.metrics import Metrics
from reservation.payments.events import Event, check_payment_intent, event_context, parse_event
from reservation.payments.ownership import NotOurs, owned_cart
from reservation.payments.signatures import TOLERANCE_SECONDS, signature_timestamp, verify
from reservation.settings import Settings
from reservation.usecases.payment_events import REGISTRY, SESSION_REGISTRY, PaymentEvents

Run = Callable[[], Awaitable[str]]
NOT_OURS = "not_ours"
# Outcomes of dispatch that sold units (the sales per second of /ops).
SALES = frozenset({"committed", "committed_late"})

logger = logging.getLogger("reservation.webhooks")
# What each outcome means for the sale, for the log line a person reads afterwards.
OUTCOMES = {
    "committed": "paid, units sold",
    "committed_late": "paid after the hold lapsed, units sold late",
    "refunded_oversold": "paid but no units left, payment refunded",
    "refund_failed": "paid but no units left, Stripe refused the refund: kept for retries",
    "refund_settled": "paid but no units left, its refused refund settled by hand",
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
LOUD = {
    "committed_late": logging.WARNING,
    "refunded_oversold": logging.WARNING,
    "refund_failed": logging.ERROR,
}


async def _ignored() -> str:
    return "ignored"


@dataclass
class StripeWebhooks:
    settings: Settings
    events: StripeEventRepository
    deliveries: SeenDeliveries
    checkouts: CheckoutRepository
    products: ProductRepository
    payments: PaymentEvents
    metrics: Metrics

    def check_signature(self, signature: str) -> None:
        """Refuse a Stripe-Signature that cannot verify any body, or is out of time, before
        a byte of the body is read (InvalidSignature)."""
        self._secret()
        signature_timestamp(signature, time.time())

    async def receive(self, payload: bytes, signature: str) -> str:
        """Verify the delivery, refuse a replay of one already received, then record and
        dispatch its event: the outcome of its handler."""
        secret = self._secret()
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise errors.InvalidPayload("the body is not UTF-8") from None
        timestamp = verify(text, signature, secret, time.time())
        event = parse_event(payload)
        # Only after the signature verified: an unsigned request cannot mark anything as seen. A
        # delivery is its signed timestamp and body (which determine its v1 signature): extra v1
        # values or a zero-padded `t` in the header verify as well and must not make it look new.
        digest = hashlib.sha256(payload).hexdigest()
        if not await self.deliveries.first(
            timestamp, digest, accepted_until=timestamp + TOLERANCE_SECONDS
        ):
            context = event_context(event)
            logger.warning(
                "webhook %s %s refused: a replay of a delivery already received",
                context["event_id"],
                context["event_type"],
                extra={**context, "outcome": "replayed"},
            )
            raise errors.ReplayedSignature(
                "this delivery (its Stripe-Signature timestamp and signature) was received"
                " before; Stripe signs every attempt afresh"
            )
        outcome = await self.dispatch(event)
        if outcome in SALES:
            self.metrics.sales_per_second.add()
        return outcome

    def _secret(self) -> str:
        secret = self.settings.stripe_webhook_secret
        if secret is None:
            raise errors.InvalidSignature("webhooks are refused: STRIPE_WEBHOOK_SECRET is not set")
        return secret

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
            cart = await owned_cart(
                subject,
                checkouts=self.checkouts,
                products=self.products,
                session_secrets=self.settings.session_secrets,
            )
            return lambda: session_handler(self.payments, subject, cart)
        handler = REGISTRY.get(event_type)
        if handler is None:
            return _ignored
        check_payment_intent(subject)
        return lambda: handler(self.payments, subject)

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
