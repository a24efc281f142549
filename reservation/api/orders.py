"""GET /v1/orders/{checkout_session_id} and GET /v1/orders (admin)."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from domain import errors
from domain.products import utc_text
from domain.statuses import OrderStatus
from persistence.orders import Order
from reservation.api.auth import require_admin
from reservation.api.bodies import json_response
from reservation.api.schemas import OrderLineView, OrderList, OrderView
from reservation.api.services import services

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
DIGITS = re.compile(r"[0-9]{1,7}")  # str.isdigit() also takes "²", which int() refuses


def order_view(order: Order) -> OrderView:
    return OrderView(
        checkout_session_id=order.checkout_session_id,
        reservation_id=order.reservation_id,
        status=order.status,
        items=[OrderLineView(line.sku, line.quantity, line.unit_amount) for line in order.items],
        amount_total=order.amount_total,
        currency=order.currency,
        customer_email=order.customer_email,
        payment_intent=order.payment_intent,
        created_at=utc_text(order.created_at),
        updated_at=utc_text(order.updated_at),
    )


async def get_order(request: Request) -> Response:
    state = services(request)
    require_admin(request, state.settings.admin_token)
    session_id = request.path_params["checkout_session_id"]
    order = await state.orders.get(session_id)
    if order is None:
        raise errors.NotFound("no order for this Checkout Session", checkout_session_id=session_id)
    return json_response(order_view(order))


def _query(request: Request) -> tuple[OrderStatus | None, int]:
    unknown = set(request.query_params) - {"status", "limit"}
    if unknown:
        raise errors.InvalidRequest(f"unknown query parameters: {sorted(unknown)}")
    raw_status = request.query_params.get("status") or None
    try:
        status = None if raw_status is None else OrderStatus(raw_status)
    except ValueError:
        raise errors.InvalidRequest(
            f"status must be one of {[s.value for s in OrderStatus]}", field="status"
        ) from None
    raw_limit = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not DIGITS.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise errors.InvalidRequest(
            f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit"
        )
    return status, int(raw_limit)


async def list_orders(request: Request) -> Response:
    state = services(request)
    require_admin(request, state.settings.admin_token)
    status, limit = _query(request)
    orders = await state.orders.list(status=status, limit=limit)
    return json_response(OrderList([order_view(order) for order in orders]))
