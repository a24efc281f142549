"""The world outside the API: buyers paying or giving up, banks settling, merchants refunding.

Each step changes the objects as Stripe would and returns the event Stripe would send.
"""

from __future__ import annotations

import heapq

from stripesim import checkout, payments
from stripesim.errors import JsonObject, invalid
from stripesim.store import Store

PAYMENT_STATUSES = ("paid", "unpaid", "no_payment_required")


def _open_session(store: Store, session_id: str, now: float) -> JsonObject:
    found = checkout.session(store, session_id)
    if found["status"] != "open" or found["expires_at"] <= now:
        status = found["status"] if found["status"] != "open" else "past its expires_at"
        raise invalid(f"Checkout Session {session_id} is not open ({status}).", "session")
    return found


def complete(store: Store, session_id: str, payment_status: str, now: float) -> JsonObject:
    """The buyer finished Checkout: paid by card, or with a delayed method (`unpaid`)."""
    if payment_status not in PAYMENT_STATUSES:
        raise invalid(f"payment_status must be one of {', '.join(PAYMENT_STATUSES)}")
    found = _open_session(store, session_id, now)
    if payment_status != "no_payment_required":
        intent = payments.intent_for(store, found, now)
        if payment_status == "paid":
            payments.succeed(store, intent, now)
        else:
            intent.update(status="processing", last_payment_error=None)
    found.update(
        status="complete",
        payment_status=payment_status,
        url=None,
        customer_details={"email": found["customer_email"], "name": None, "phone": None},
    )
    return store.emit("checkout.session.completed", found, now)


def async_payment(store: Store, session_id: str, succeeded: bool, now: float) -> JsonObject:
    """A delayed payment (bank debit) of a completed session settles or fails."""
    found = checkout.session(store, session_id)
    intent_id = found["payment_intent"]
    intent = store.payment_intents.get(intent_id) if intent_id else None
    if found["status"] != "complete" or intent is None or intent["status"] != "processing":
        raise invalid(f"Checkout Session {session_id} has no delayed payment pending.", "session")
    if succeeded:
        payments.succeed(store, intent, now)
        found["payment_status"] = "paid"
        return store.emit("checkout.session.async_payment_succeeded", found, now)
    payments.decline(intent)
    return store.emit("checkout.session.async_payment_failed", found, now)


def expire(store: Store, session_id: str, now: float) -> JsonObject:
    """The session's time ran out (or the buyer cancelled on the pay page)."""
    return checkout.expire(store, checkout.session(store, session_id), now, None)


def fail_payment(store: Store, intent_id: str, now: float) -> JsonObject:
    """A payment attempt was declined; the buyer may try again in the same session."""
    intent = payments.payment_intent(store, intent_id)
    if intent["status"] == "succeeded":
        raise invalid(f"PaymentIntent {intent_id} has already succeeded.", "intent")
    payments.decline(intent)
    return store.emit("payment_intent.payment_failed", intent, now)


def fail_session_payment(store: Store, session_id: str, now: float) -> JsonObject:
    """The buyer's card was declined in an open session (its payment intent is made now)."""
    intent = payments.intent_for(store, _open_session(store, session_id, now), now)
    payments.decline(intent)
    return store.emit("payment_intent.payment_failed", intent, now)


def merchant_refund(
    store: Store, intent_id: str, now: float, amount: int | None = None
) -> JsonObject:
    """The merchant refunded `amount` (default: everything left), say from the Dashboard.
    A partial refund leaves the charge `refunded: false` with its `amount_refunded`, as Stripe
    does, and still sends `charge.refunded`."""
    intent = payments.payment_intent(store, intent_id)
    charge = payments.charge_of(store, intent, "intent")
    payments.refund(store, charge, now, amount, reason="requested_by_customer")
    return store.emit("charge.refunded", charge, now)


def expire_due(store: Store, now: float) -> list[JsonObject]:
    """Expire every open session whose `expires_at` has passed, as Stripe does."""
    events = []
    while store.expiry and store.expiry[0][0] <= now:
        _, session_id = heapq.heappop(store.expiry)
        found = store.sessions.get(session_id)
        if found is not None and found["status"] == "open":
            events.append(checkout.expire(store, found, now, None))
    return events
