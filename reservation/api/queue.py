"""POST /v1/queue/{sku}, GET /v1/queue/{sku}/{ticket}, and GET /v1/queue/{sku} (admin)."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from domain.products import utc_text
from domain.queue import RoomState, TicketState
from reservation.api.auth import require_admin
from reservation.api.bodies import decode, json_response, read_body, require_json
from reservation.api.customers import caller_of
from reservation.api.schemas import AdmissionView, QueueIn, RoomView, TicketView, WaitingRoomView
from reservation.api.services import services
from reservation.usecases import queue

# A ticket's state is its holder's, and changes from one poll to the next: never cached.
NO_STORE = {"Cache-Control": "no-store"}


def ticket_view(state: TicketState) -> TicketView:
    view = TicketView(
        state.ticket,
        state.status,
        state.position,
        state.estimated_wait_seconds,
        state.poll_after_ms,
    )
    if state.admission_token is not None and state.admission_expires_at is not None:
        view.admission_token = state.admission_token
        view.admission_expires_at = utc_text(state.admission_expires_at)
    return view


async def _queue_body(request: Request) -> QueueIn:
    """The body is optional: none at all joins anonymously; one that is sent is JSON."""
    if not request.headers.getlist("content-type"):
        if await read_body(request):
            require_json(request)  # a body without its type: 415
        return QueueIn()
    require_json(request)
    raw = await read_body(request)
    return decode(raw, QueueIn) if raw.strip() else QueueIn()


async def join_queue(request: Request) -> Response:
    state = services(request)
    caller = await caller_of(state, request)
    body = await _queue_body(request)
    ticket = await queue.join(state.inventory, caller, request.path_params["sku"], body.customer_id)
    return json_response(ticket_view(ticket), 201 if ticket.created else 200, NO_STORE)


async def get_ticket(request: Request) -> Response:
    state = services(request)
    sku, ticket = request.path_params["sku"], request.path_params["ticket"]
    return json_response(ticket_view(await queue.poll(state.inventory, sku, ticket)), 200, NO_STORE)


def room_view(room: RoomState) -> RoomView:
    admissions = [
        AdmissionView(
            admission.ticket,
            utc_text(admission.admitted_at),
            utc_text(admission.expires_at),
            None if admission.used_at is None else utc_text(admission.used_at),
            admission.reservation_id,
        )
        for admission in room.admissions
    ]
    return RoomView(
        sku=room.sku,
        waiting_room=msgspec.convert(room.waiting_room, WaitingRoomView, from_attributes=True),
        started=room.started,
        waiting=room.waiting,
        active=room.active,
        admitted=room.admitted,
        used=room.used,
        admissions=admissions,
    )


async def get_room(request: Request) -> Response:
    state = services(request)
    require_admin(request, state.settings.admin_token)
    room = await queue.room_state(state.inventory, request.path_params["sku"])
    return json_response(room_view(room), 200, NO_STORE)
