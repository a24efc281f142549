"""GET /healthz, /readyz, /metrics, /openapi.json."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from domain.errors import ReservationError
from persistence.mongo import ping as ping_mongodb
from reservation.api.bodies import json_response
from reservation.api.failures import error_response
from reservation.api.openapi import openapi_document
from reservation.api.schemas import Health, Readiness, encoder
from reservation.api.services import Services, services

PROBE_SECONDS = 2.0


async def healthz(request: Request) -> Response:
    return json_response(Health("ok"))


async def _redis_answers(state: Services) -> bool:
    try:
        return bool(await asyncio.wait_for(state.redis.ping(), PROBE_SECONDS))
    except Exception:  # any failure to answer means not ready
        return False


async def _mongodb_answers(state: Services) -> bool:
    try:
        return await asyncio.wait_for(ping_mongodb(state.db), PROBE_SECONDS)
    except Exception:  # any failure to answer means not ready
        return False


async def readyz(request: Request) -> Response:
    """Ready while Redis answers: the hot path (reserve, product reads) needs only Redis. A
    MongoDB that does not answer makes the process degraded, not unready, so a load balancer
    keeps it in rotation through a MongoDB blip."""
    state = services(request)
    redis_ok, mongodb_ok = await asyncio.gather(_redis_answers(state), _mongodb_answers(state))
    redis = "ok" if redis_ok else "down"
    mongodb = "ok" if mongodb_ok else "down"
    if redis_ok:
        return json_response(Readiness("ready", redis, mongodb, degraded=not mongodb_ok))
    return error_response(
        503, "storage_unavailable", "Redis does not answer", {"redis": redis, "mongodb": mongodb}
    )


async def metrics(request: Request) -> Response:
    state = services(request)
    try:
        for pool in await state.inventory.pools.stocked():
            state.metrics.expired.labels(pool).set(await state.inventory.stock.expired_holds(pool))
    except ReservationError:
        pass  # Redis down: serve what this process knows; /readyz reports the outage
    try:
        failed_refunds = state.webhooks.payments.failed_refunds
        failed = await asyncio.wait_for(failed_refunds.count_failed(), PROBE_SECONDS)
        state.metrics.refunds_failed.set(failed)
    except (ReservationError, TimeoutError):
        pass  # MongoDB down: the last count stands
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    # Built from the routes this app serves, once per app.
    state = request.app.state
    document: bytes | None = getattr(state, "openapi_json", None)
    if document is None:
        document = state.openapi_json = encoder.encode(openapi_document(request.app.routes))
    return Response(document, media_type="application/json")
