"""POST /v1/waitlist/{sku}, GET and DELETE /v1/waitlist/{sku}/{customer_id}; for the admin,
GET /v1/waitlist/{sku} and POST /v1/waitlist/{sku}/close and /open."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from domain.products import utc_text
from domain.waitlist import LineState, WaiterState
from reservation.api.auth import is_admin, require_admin
from reservation.api.bodies import json_response, read_json
from reservation.api.customers import caller_of
from reservation.api.ratelimits import counted_address
from reservation.api.services import Services, services
from reservation.api.waitlist_schemas import (
    OfferView,
    WaiterView,
    WaitlistClosedView,
    WaitlistEntryView,
    WaitlistIn,
    WaitlistLineView,
    WaitlistOpenView,
)
from reservation.customers.caller import ANYONE, Caller
from reservation.usecases.waitlist import JoinRequest

# An entry is its buyer's and changes as units come back: never cached.
NO_STORE = {"Cache-Control": "no-store"}


def entry_view(state: WaiterState) -> WaitlistEntryView:
    offer = None
    if state.offer is not None:
        offer = OfferView(state.offer.reservation_id, utc_text(state.offer.expires_at))
    return WaitlistEntryView(
        sku=state.sku,
        customer_id=state.customer_id,
        status=state.status,
        position=state.position,
        quantity=state.quantity,
        joined_at=utc_text(state.joined_at),
        offer=offer,
    )


def line_view(line: LineState) -> WaitlistLineView:
    waiters = [
        WaiterView(waiter.customer_id, waiter.quantity, utc_text(waiter.joined_at))
        for waiter in line.line
    ]
    return WaitlistLineView(line.sku, line.closed, line.waiting, line.offers, waiters)


async def entry_caller(state: Services, request: Request) -> Caller:
    """The admin reads or removes anybody's entry; anybody else is a buyer (customer token)."""
    if is_admin(request, state.settings.admin_token):
        return ANYONE
    return await caller_of(state, request)


async def join_waitlist(request: Request) -> Response:
    state = services(request)
    caller = await caller_of(state, request)
    body = await read_json(request, WaitlistIn)
    asked = JoinRequest(
        request.path_params["sku"], body.quantity, body.customer_id, counted_address(state, request)
    )
    entry = await state.waitlist.join(caller, asked)
    return json_response(entry_view(entry), 201 if entry.created else 200, NO_STORE)


async def get_entry(request: Request) -> Response:
    state = services(request)
    caller = await entry_caller(state, request)
    sku, customer_id = request.path_params["sku"], request.path_params["customer_id"]
    entry = await state.waitlist.read(caller, sku, customer_id)
    return json_response(entry_view(entry), 200, NO_STORE)


async def leave_waitlist(request: Request) -> Response:
    state = services(request)
    caller = await entry_caller(state, request)
    sku, customer_id = request.path_params["sku"], request.path_params["customer_id"]
    await state.waitlist.leave(caller, sku, customer_id)
    return Response(status_code=204)


async def get_line(request: Request) -> Response:
    state = services(request)
    require_admin(request, state.settings.admin_token)
    line = await state.waitlist.line(request.path_params["sku"])
    return json_response(line_view(line), 200, NO_STORE)


async def close_waitlist(request: Request) -> Response:
    state = services(request)
    require_admin(request, state.settings.admin_token)
    sku = request.path_params["sku"]
    removed = await state.waitlist.close(sku)
    return json_response(WaitlistClosedView(sku, True, removed))


async def open_waitlist(request: Request) -> Response:
    state = services(request)
    require_admin(request, state.settings.admin_token)
    sku = request.path_params["sku"]
    await state.waitlist.open(sku)
    return json_response(WaitlistOpenView(sku, False))
