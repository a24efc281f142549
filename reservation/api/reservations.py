"""POST /v1/reservations, GET and DELETE /v1/reservations/{id}."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from domain.products import utc_text
from domain.reservations import Reservation
from reservation.api.bodies import json_response, read_json
from reservation.api.customers import caller_of
from reservation.api.ratelimits import counted_address
from reservation.api.schemas import CartLineView, ReservationIn, ReservationView
from reservation.api.services import services
from reservation.usecases.hold import HoldRequest
from reservation.usecases.lookup import look_up
from reservation.usecases.release import release


def reservation_view(
    reservation: Reservation, checkout_session_id: str | None = None
) -> ReservationView:
    return ReservationView(
        id=reservation.id,
        status=reservation.status,
        items=[CartLineView(line.sku, line.quantity) for line in reservation.items],
        customer_id=reservation.customer_id,
        expires_at=utc_text(reservation.expires_at),
        checkout_session_id=checkout_session_id,
    )


async def create_reservation(request: Request) -> Response:
    state = services(request)
    caller = await caller_of(state, request)
    body = await read_json(request, ReservationIn)
    held = await state.hold(
        HoldRequest(
            items=[(line.sku, line.quantity) for line in body.items],
            customer_id=body.customer_id,
            caller=caller,
            idempotency_key=request.headers.get("idempotency-key"),
            client_address=counted_address(state, request),
            admission_token=body.admission_token,
        )
    )
    # A retry with the same Idempotency-Key gets the answer the first request got.
    return json_response(reservation_view(held.reservation), 201)


async def get_reservation(request: Request) -> Response:
    state = services(request)
    found = await look_up(
        state.inventory,
        state.checkouts,
        await caller_of(state, request),
        request.path_params["reservation_id"],
    )
    return json_response(reservation_view(found.reservation, found.checkout_session_id))


async def delete_reservation(request: Request) -> Response:
    state = services(request)
    released = await release(
        state.inventory,
        state.checkouts,
        state.expiry,
        state.metrics,
        request.path_params["reservation_id"],
        await caller_of(state, request),
    )
    return json_response(reservation_view(released.reservation, released.checkout_session_id))
