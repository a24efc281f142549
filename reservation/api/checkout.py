"""POST /v1/checkout, and GET /v1/checkout/{checkout_session_id} (the buyer's view of it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from domain.products import utc_text
from domain.reservations import CartLine
from reservation.api.bodies import json_response, read_json, require_json
from reservation.api.customers import caller_of
from reservation.api.ratelimits import counted_address
from reservation.api.schemas import CartLineView, CheckoutIn, CheckoutStateView, CheckoutView
from reservation.api.services import services
from reservation.customers.caller import Caller
from reservation.usecases.checkout import CheckoutRequest
from reservation.usecases.session_state import session_state


async def create_checkout(request: Request) -> Response:
    state = services(request)
    # Before the address is counted: a form on another site must not spend its visitor's budget.
    require_json(request)
    # Then who asks: a token that does not verify is refused before anything is counted.
    caller = await caller_of(state, request)
    await state.checkout.limit_client(counted_address(state, request))
    body = await read_json(request, CheckoutIn)
    checkout = await state.checkout.start(checkout_request(body, caller))
    view = CheckoutView(
        checkout.reservation_id, checkout.session_id, checkout.url, utc_text(checkout.expires_at)
    )
    return json_response(view, 201)


def checkout_request(body: CheckoutIn, caller: Caller) -> CheckoutRequest:
    """The body, and who sent it, as the checkout use case takes them."""
    items = None
    if body.items is not None:
        items = tuple(CartLine(line.sku, line.quantity) for line in body.items)
    return CheckoutRequest(
        body.reservation_id,
        items,
        body.customer_id,
        body.customer_email,
        caller,
        body.admission_token,
    )


async def get_checkout(request: Request) -> Response:
    """Where a Checkout Session stands, for its buyer's success page.

    The session id is the buyer's (Stripe puts it in the success URL); the answer carries no
    customer data (email, customer id, payment intent), only statuses, lines and the total."""
    state = services(request)
    found = await session_state(
        state.checkouts, state.orders, state.inventory, request.path_params["checkout_session_id"]
    )
    reservation, order = found.reservation, found.order
    view = CheckoutStateView(
        checkout_session_id=found.checkout.session_id,
        session_status=found.checkout.status,
        reservation_status=None if reservation is None else reservation.status,
        hold_expires_at=None if reservation is None else utc_text(reservation.expires_at),
        order_status=None if order is None else order.status,
        items=[CartLineView(sku, quantity) for sku, quantity in found.lines],
        amount_total=None if order is None else order.amount_total,
        currency=None if order is None else order.currency,
    )
    return json_response(view)
