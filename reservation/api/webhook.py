"""POST /v1/webhooks/stripe: verify the signature on the raw body, then store and dispatch."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import Any

import msgspec
import stripe
from starlette.requests import Request
from starlette.responses import Response

from domain import errors
from reservation.api.bodies import json_response, read_body
from reservation.api.schemas import WebhookAnswer
from reservation.api.services import services
from reservation.usecases.webhooks import event_context

MAX_EVENT_BYTES = 1024 * 1024  # Stripe events stay far below this
# Stripe events nest a few levels (event.data.object.some_hash.field); a body nested far deeper
# is not an event, and would exhaust the decoder's or the database driver's recursion.
MAX_EVENT_DEPTH = 32
MAX_ID_LENGTH = 255
TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE
SCHEME = stripe.WebhookSignature.EXPECTED_SCHEME  # v1: HMAC-SHA256, in lowercase hex
SIGNATURE = re.compile(r"[0-9a-f]{64}")
DIGITS = re.compile(r"[0-9]+")
# A `t` of more digits is far past any clock (10 digits last until the year 2286), and
# int() refuses strings of more than 4,300 digits.
MAX_TIMESTAMP_DIGITS = 15
logger = logging.getLogger("reservation.webhooks")
# Outcomes of dispatch that sold units (the sales per second of /ops).
SALES = frozenset({"committed", "committed_late"})


async def stripe_webhook(request: Request) -> Response:
    state = services(request)
    secret = state.settings.stripe_webhook_secret
    if secret is None:
        raise errors.InvalidSignature("webhooks are refused: STRIPE_WEBHOOK_SECRET is not set")
    header = request.headers.get("stripe-signature", "")
    # Before a byte of the body: a header that cannot verify any body, or is out of time,
    # refuses the request at once instead of after buffering up to 1 MiB of whatever came.
    signature_timestamp(header, time.time())
    payload = await read_body(request, MAX_EVENT_BYTES)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidPayload("the body is not UTF-8") from None
    timestamp = verify(text, header, secret, time.time())
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
    """The header is well formed, its timestamp within the tolerance of `now`, past or
    future, and its signature matches `text`: the timestamp that was verified."""
    timestamp = signature_timestamp(header, now)
    try:
        # The time window was checked above, both ways (stripe-python checks the past only,
        # and a timestamp ahead of the clock would let a captured delivery be replayed until
        # then); the library checks the signature.
        stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
    except stripe.SignatureVerificationError:
        raise errors.InvalidSignature("the Stripe-Signature does not match the body") from None
    return timestamp


def signature_timestamp(header: str, now: float) -> int:
    """The timestamp of a Stripe-Signature that may verify a body, within the tolerance of
    `now` either way; else InvalidSignature saying what is wrong.

    The header is read as stripe-python reads it (items split on `,`, each named by what
    precedes its first `=`; the first named exactly `t` is the timestamp, every `v1` a
    signature), and held to what Stripe sends (`t=<seconds>,v1=<64 hex>[,v1=…][,v0=…]`):
    exactly one `t`, in digits, so that the timestamp checked here is the one the library
    signs with, and at least one `v1`, each 64 lowercase hex digits as the library computes
    them. What the library would also take (`t=+1`, `t= 1`, `t=1=x`) no signature of
    Stripe's carries.
    """
    if not header:
        raise errors.InvalidSignature("the Stripe-Signature header is missing")
    if not header.isascii():  # the library's constant-time comparison takes ASCII only
        raise errors.InvalidSignature("the Stripe-Signature header is not ASCII")
    stamps: list[str] = []
    signatures = 0
    for item in header.split(","):
        name, _, value = item.partition("=")
        if name == "t":
            stamps.append(value)
        elif name == SCHEME:
            if not SIGNATURE.fullmatch(value):
                raise errors.InvalidSignature(
                    f"a {SCHEME} signature of the Stripe-Signature is not 64 lowercase "
                    f"hexadecimal digits: {value[:80]!r}"
                )
            signatures += 1
    if not stamps:
        raise errors.InvalidSignature("the Stripe-Signature has no timestamp (t=)")
    if len(stamps) > 1:
        raise errors.InvalidSignature("the Stripe-Signature has more than one timestamp (t=)")
    if not DIGITS.fullmatch(stamps[0]):
        raise errors.InvalidSignature(
            "the Stripe-Signature timestamp (t) is not a whole number of seconds: "
            f"{stamps[0][:80]!r}"
        )
    if not signatures:
        raise errors.InvalidSignature(f"the Stripe-Signature has no {SCHEME} signature")
    significant = stamps[0].lstrip("0")
    if len(significant) > MAX_TIMESTAMP_DIGITS:  # beyond any clock; int() would refuse it
        raise errors.InvalidSignature(
            "the Stripe-Signature timestamp is ahead of this server's clock by more than "
            f"{TOLERANCE_SECONDS} s"
        )
    timestamp = int(significant or "0")
    if timestamp < now - TOLERANCE_SECONDS:
        raise errors.InvalidSignature(
            f"the Stripe-Signature timestamp is {now - timestamp:.0f} s old; at most "
            f"{TOLERANCE_SECONDS} s are accepted"
        )
    if timestamp > now + TOLERANCE_SECONDS:
        raise errors.InvalidSignature(
            f"the Stripe-Signature timestamp is {timestamp - now:.0f} s ahead of this server's "
            f"clock; at most {TOLERANCE_SECONDS} s are accepted"
        )
    return timestamp


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
