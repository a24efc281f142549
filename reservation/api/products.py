"""PUT /v1/products/{sku} (admin), GET /v1/products/{sku}, GET /v1/products (with the
configured Cache-Control).

The product view is written here alone: `product_view` is the one converter from the catalog's
products to the HTTP answer (Redis assembles the same shape on the hot read, reservation/lua/
product.lua, and a test holds the two equal).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from functools import partial

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from domain.products import ProductSpec, StockedProduct, utc_text
from domain.rules import check_name
from reservation.api.auth import require_admin
from reservation.api.bodies import json_response, read_json
from reservation.api.schemas import (
    ProductIn,
    ProductList,
    ProductView,
    WaitingRoomView,
    encoder,
)
from reservation.api.services import Services, services


def product_spec(body: ProductIn) -> ProductSpec:
    """What a PUT body asks the catalog to set (its fields, by name)."""
    return msgspec.convert(body, ProductSpec, from_attributes=True)


def product_view(product: StockedProduct) -> ProductView:
    """The HTTP view of a catalog product: its recorded fields and its live counts."""
    fields = asdict(product.spec)
    for name in ("sale_starts_at", "sale_ends_at"):
        fields[name] = None if fields[name] is None else utc_text(fields[name])
    room = product.spec.waiting_room
    fields["waiting_room"] = None if room is None else WaitingRoomView(**asdict(room))
    return ProductView(
        sku=product.sku,
        reserved=product.reserved,
        sold=product.sold,
        available=product.available,
        on_sale=product.on_sale,
        waitlist=product.waitlist,
        **fields,
    )


def _product_json(product: StockedProduct) -> bytes:
    return encoder.encode(product_view(product))


def _list_json(products: list[StockedProduct]) -> bytes:
    return encoder.encode(ProductList([product_view(product) for product in products]))


async def put_product(request: Request) -> Response:
    state = services(request)
    require_admin(request, state.settings.admin_token)
    sku = check_name(request.path_params["sku"], "sku")
    body = await read_json(request, ProductIn)
    return json_response(product_view(await state.catalog.put(sku, product_spec(body))))


def product_reader(state: Services) -> Callable[[str], Awaitable[bytes]]:
    """GET /v1/products/{sku}'s read, the answer's JSON, for the stock feed
    (reservation/api/stock_feed.py)."""
    return partial(state.catalog.get_json, encode=_product_json)


def _cached(answer: bytes, state: Services) -> Response:
    # A CDN or browser may reuse a product read for a moment (RESERVATION_PRODUCT_CACHE_CONTROL):
    # what a page shows of the stock is never what decides a hold.
    cache_control = state.settings.product_cache_control
    headers = {"Cache-Control": cache_control} if cache_control else None
    return Response(answer, media_type="application/json", headers=headers)


async def get_product(request: Request) -> Response:
    sku = check_name(request.path_params["sku"], "sku")
    state = services(request)
    # The JSON text comes whole from Redis: nothing to decode or encode on the hot read.
    return _cached(await state.catalog.get_json(sku, _product_json), state)


async def list_products(request: Request) -> Response:
    state = services(request)
    return _cached(await state.catalog.list_json(_list_json), state)
