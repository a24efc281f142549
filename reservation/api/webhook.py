"""POST /v1/webhooks/stripe: verify the signature on the raw body, then store and dispatch."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import msgspec
import stripe
from starlette.requests import Request
from starlette.responses import Response

from domain import errors
from reservation.api.bodies import json_response, read_body
from reservation.api.services import services
from reservation.schemas import WebhookAnswer
from reservation.webhooks import event_context

MAX_EVENT_BYTES = 1024 * 1024  # Stripe events stay far below this
# Stripe events nest a few levels (event.data.object.some_hash.field); a body nested far deeper
# is not an event, and would exhaust the decoder's or the database driver's recursion.
MAX_EVENT_DEPTH = 32
MAX_ID_LENGTH = 255
TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE
logger = logging.getLogger("reservation.webhooks")
# Outcomes of dispatch that sold units (the sales per second of /ops).
SALES = frozenset({"committed", "committed_late"})


async def stripe_webhook(request: Request) -> Response:
    state = services(request)
    secret = state.settings.stripe_webhook_secret
    payload = await read_body(request, MAX_EVENT_BYTES)
    if secret is None:
        raise errors.InvalidSignature("webhooks are refused: STRIPE_WEBHOOK_SECRET is not set")
    header = request.headers.get("stripe-signature")
    if not header:
        raise errors.InvalidSignature("the Stripe-Signature header is missing")
    if not header.isascii():  # the library's constant-time comparison takes ASCII only
        raise errors.InvalidSignature("the Stripe-Signature does not match the body")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidPayload("the body is not UTF-8") from None
    now = time.time()
    timestamp = verify(text, header, secret, now)
    event = parse_event(payload)
    # Only after the signature verified: an unsigned request cannot mark anything as seen. A
    # delivery is its signed timestamp and body (which determine its v1 signature): extra v1
    # values or a zero-padded `t` in the header verify as well and must not make it look new.
    digest = hashlib.sha256(payload).hexdigest()
    if not await state.deliveries.first(
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
            "this delivery (its Stripe-Signature timestamp and signature) was received before; "
            "Stripe signs every attempt afresh"
        )
    outcome = await state.webhooks.dispatch(event)
    if outcome in SALES:
        state.metrics.sales_per_second.add()
    return json_response(WebhookAnswer(True))


def verify(text: str, header: str, secret: str, now: float) -> int:
    """The signature matches and its timestamp is within the tolerance, past or future: the
    timestamp that was verified.

    stripe-python refuses old timestamps only; a timestamp ahead of the clock would let a
    captured delivery be replayed until then.
    """
    try:
        stripe.WebhookSignature.verify_header(text, header, secret, TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError:
        raise errors.InvalidSignature("the Stripe-Signature does not match the body") from None
    timestamp = _timestamp(header)
    if timestamp is None or timestamp > now + TOLERANCE_SECONDS:
        raise errors.InvalidSignature(
            "the Stripe-Signature timestamp is ahead of this server's clock by more than "
            f"{TOLERANCE_SECONDS} s"
        )
    return timestamp


def _timestamp(header: str) -> int | None:
    """The header's `t`, read as stripe-python reads it (the first item named exactly `t`),
    so that the timestamp checked here is the one that was verified; None unless digits."""
    for item in header.split(","):
        name, _, value = item.partition("=")
        if name == "t":
            return int(value) if value.isascii() and value.isdigit() else None
    return None


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
