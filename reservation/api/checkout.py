"""POST /v1/checkout, and GET /v1/checkout/{checkout_session_id} (the buyer's view of it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from domain import errors
from domain.reservations import Reservation
from reservation.api.bodies import json_response, read_json, require_json, utc_text
from reservation.api.ratelimits import limit_client, limit_customer
from reservation.api.schemas import CartLineView, CheckoutIn, CheckoutStateView, CheckoutView
from reservation.api.services import Services, services
from reservation.core.ratelimit import CUSTOMER

MAX_SESSION_ID = 255


async def create_checkout(request: Request) -> Response:
    state = services(request)
    # Before the address is counted: a form on another site must not spend its visitor's budget.
    require_json(request)
    try:
        await limit_client(state, request)
        body = await read_json(request, CheckoutIn)
        customer_id, reservation = await _customer_of(state, body)
        await limit_customer(state, customer_id)
    except errors.RateLimited as exc:
        state.metrics.checkouts.labels(exc.code).inc()
        raise
    try:
        checkout = await state.checkout.start(body, reservation)
    except errors.ReservationError as exc:
        state.metrics.checkouts.labels(exc.code).inc()
        raise
    state.metrics.checkouts.labels("session").inc()
    if body.items is not None:
        state.metrics.holds_per_second.add()  # a cart was held for this session just now
    view = CheckoutView(
        checkout.reservation_id, checkout.session_id, checkout.url, utc_text(checkout.expires_at)
    )
    return json_response(view, 201)


async def _customer_of(state: Services, body: CheckoutIn) -> tuple[str | None, Reservation | None]:
    """The customer a checkout is for: the cart's, or the reservation's (read only while the
    limit per customer is on; the reservation read is handed on, not read again)."""
    if body.reservation_id is None or body.items is not None:
        return body.customer_id, None
    if not state.rate_limiter.on(CUSTOMER):
        return None, None
    reservation = await state.inventory.get(body.reservation_id)
    return reservation.customer_id, reservation


async def get_checkout(request: Request) -> Response:
    """Where a Checkout Session stands, for its buyer's success page: the session as this
    service last heard of it, its hold, and its order once the payment's webhook landed.

    The session id is the buyer's (Stripe puts it in the success URL); the answer carries no
    customer data (email, customer id, payment intent), only statuses, lines and the total."""
    state = services(request)
    session_id = request.path_params["checkout_session_id"]
    checkout = None
    if len(session_id) <= MAX_SESSION_ID:
        checkout = await state.checkouts.get(session_id)
    if checkout is None:
        raise errors.NotFound("no such Checkout Session", checkout_session_id=session_id)
    order = await state.orders.get(session_id)
    try:
        reservation = await state.inventory.get(checkout.reservation_id)
    except errors.NotFound:
        reservation = None  # Redis no longer knows it (its record outlived its retention)
    if order is not None:
        items = [CartLineView(line.sku, line.quantity) for line in order.items]
    elif reservation is not None:
        items = [CartLineView(line.sku, line.quantity) for line in reservation.items]
    else:
        items = []
    view = CheckoutStateView(
        checkout_session_id=checkout.session_id,
        session_status=checkout.status,
        reservation_status=None if reservation is None else reservation.status,
        hold_expires_at=None if reservation is None else utc_text(reservation.expires_at),
        order_status=None if order is None else order.status,
        items=items,
        amount_total=None if order is None else order.amount_total,
        currency=None if order is None else order.currency,
    )
    return json_response(view)
