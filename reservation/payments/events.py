"""Stripe events as this service reads them: parsed from a verified body, checked field by
field before anything acts on them, and told in log lines by their ids."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from domain import errors
from domain.rules import MAX_AMOUNT
from reservation.payments import session_metadata
from reservation.payments.session_metadata import SessionCart

Event = dict[str, Any]
# Stripe events nest a few levels (event.data.object.some_hash.field); a body nested far deeper
# is not an event, and would exhaust the decoder's or the database driver's recursion.
MAX_EVENT_DEPTH = 32
MAX_ID_LENGTH = 255
MAX_CONTEXT = 255  # the longest id a log line quotes from an event
MAX_EMAIL = 320  # RFC 5321's longest address
CURRENCY = re.compile(r"[a-z]{3}")


def parse_event(payload: bytes) -> dict[str, Any]:
    """The event in a verified body; InvalidPayload (400, nothing stored) when it is none."""
    try:
        event = msgspec.json.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise errors.InvalidPayload("the body is not JSON") from None
    if _depth_exceeds(event, MAX_EVENT_DEPTH):
        raise errors.InvalidPayload(f"the body nests deeper than {MAX_EVENT_DEPTH} levels")
    if not (
        isinstance(event, dict)
        and _is_id(event.get("id"))
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
        and _is_id(event["data"]["object"].get("id"))
    ):
        raise errors.InvalidPayload("the body is not a Stripe event")
    return event


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


def _depth_exceeds(value: object, limit: int) -> bool:
    """True if containers nest more than `limit` levels (walked without recursion)."""
    level: list[object] = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def logged_cart(session: dict[str, Any]) -> SessionCart | None:
    """The reservation and cart a session's metadata names, for a log line only: whether the
    session is ours is `ownership.owned_cart`'s to say."""
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
    payment_intent = payment_intent_of(session)
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
    payment_intent = payment_intent_of(obj)
    if payment_intent is None and event_type.startswith("payment_intent."):
        payment_intent = text_of(obj.get("id"))
    if payment_intent is not None:
        context["payment_intent"] = _bounded(payment_intent)
    return context


def _bounded(value: object) -> str | None:
    return None if value is None else str(value)[:MAX_CONTEXT]


def text_of(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def check_session_fields(session: dict[str, Any]) -> None:
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
    check_payment_intent(session)


def check_payment_intent(obj: dict[str, Any]) -> None:
    value = _payment_intent_field(obj)
    if value is not None and not (isinstance(value, str) and 0 < len(value) <= MAX_CONTEXT):
        raise errors.InvalidPayload("the payment_intent is not an id")


def email_of(value: object) -> str | None:
    """An email address as Stripe gives it; longer than any address can be: none."""
    text = text_of(value)
    return text if text is not None and len(text) <= MAX_EMAIL else None


def _payment_intent_field(obj: dict[str, Any]) -> object:
    """The payment_intent field as sent: an id, or the id of an expanded object."""
    value = obj.get("payment_intent")
    return value.get("id") if isinstance(value, dict) else value


def payment_intent_of(obj: dict[str, Any]) -> str | None:
    value = _payment_intent_field(obj)
    return value if isinstance(value, str) else None
