"""PUT /v1/products/{sku} (admin), GET /v1/products/{sku}, GET /v1/products."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from domain.rules import check_name
from reservation.api.auth import require_admin
from reservation.api.bodies import json_response, read_json
from reservation.api.schemas import ProductIn
from reservation.api.services import services


async def put_product(request: Request) -> Response:
    state = services(request)
    require_admin(request, state.settings.admin_token)
    sku = check_name(request.path_params["sku"], "sku")
    body = await read_json(request, ProductIn)
    return json_response(await state.catalog.put(sku, body))


async def get_product(request: Request) -> Response:
    sku = check_name(request.path_params["sku"], "sku")
    # The JSON text comes whole from Redis: nothing to decode or encode on the hot read.
    return Response(await services(request).catalog.get_json(sku), media_type="application/json")


async def list_products(request: Request) -> Response:
    return Response(await services(request).catalog.list_json(), media_type="application/json")
