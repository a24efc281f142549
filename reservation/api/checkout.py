"""POST /v1/checkout."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from reservation import errors
from reservation.api.bodies import json_response, read_json, utc_text
from reservation.api.services import services
from reservation.schemas import CheckoutIn, CheckoutView


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
