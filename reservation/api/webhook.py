"""POST /v1/webhooks/stripe: the raw body and its Stripe-Signature, handed to the webhook use
case (reservation/usecases/webhooks.py), which verifies, records and dispatches."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from reservation.api.bodies import json_response, read_body
from reservation.api.schemas import WebhookAnswer
from reservation.api.services import services

MAX_EVENT_BYTES = 1024 * 1024  # Stripe events stay far below this


async def stripe_webhook(request: Request) -> Response:
    state = services(request)
    signature = request.headers.get("stripe-signature", "")
    # Before a byte of the body: a header that cannot verify any body, or is out of time,
    # refuses the request at once instead of after buffering up to 1 MiB of whatever came.
    state.webhooks.check_signature(signature)
    await state.webhooks.receive(await read_body(request, MAX_EVENT_BYTES), signature)
    return json_response(WebhookAnswer(True))
