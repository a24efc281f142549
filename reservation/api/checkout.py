"""POST /v1/checkout and POST /v1/webhooks/stripe."""

from __future__ import annotations

import json

import stripe
from starlette.requests import Request
from starlette.responses import Response

from reservation import errors
from reservation.api.bodies import json_response, read_body, read_json, utc_text
from reservation.api.services import services
from reservation.schemas import CheckoutIn, CheckoutView, WebhookAnswer

MAX_EVENT_BYTES = 1024 * 1024  # Stripe events stay far below this


async def create_checkout(request: Request) -> Response:
    state = services(request)
    body = await read_json(request, CheckoutIn)
    try:
        checkout = await state.checkout.start(body)
    except errors.ReservationError as exc:
        state.metrics.checkouts.labels(exc.code).inc()
        raise
    state.metrics.checkouts.labels("session").inc()
    view = CheckoutView(
        checkout.reservation_id, checkout.session_id, checkout.url, utc_text(checkout.expires_at)
    )
    return json_response(view, 201)


async def stripe_webhook(request: Request) -> Response:
    """Verify the signature on the raw body, then store and dispatch the event."""
    state = services(request)
    secret = state.settings.stripe_webhook_secret
    payload = await read_body(request, MAX_EVENT_BYTES)
    if secret is None:
        raise errors.InvalidSignature("webhooks are refused: STRIPE_WEBHOOK_SECRET is not set")
    header = request.headers.get("stripe-signature")
    if not header:
        raise errors.InvalidSignature("the Stripe-Signature header is missing")
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(
            text, header, secret, stripe.Webhook.DEFAULT_TOLERANCE
        )
    except (UnicodeDecodeError, stripe.SignatureVerificationError):
        raise errors.InvalidSignature("the Stripe-Signature does not match the body") from None
    await state.webhooks.dispatch(_event(text))
    return json_response(WebhookAnswer(True))


def _event(text: str) -> dict[str, object]:
    try:
        event = json.loads(text)
    except ValueError:
        raise errors.InvalidPayload("the body is not JSON") from None
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
        and isinstance(event["data"]["object"].get("id"), str)
    ):
        raise errors.InvalidPayload("the body is not a Stripe event")
    return event
