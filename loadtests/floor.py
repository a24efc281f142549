"""The HTTP benchmark's floor: a bare Starlette app, one route doing one Redis GET.

Served by `python -m uvicorn loadtests.floor:floor_app` exactly as `reservation serve` runs
the API (uvloop + httptools, 1 worker, no access log). It imports only what the app needs, so
its process holds what a bare Starlette app holds (the benchmark's own tools — httpx, pymongo,
matplotlib — would double its heap), and it applies the service's garbage-collector settings
after start-up, so the floor and the service differ only in the code a request runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from loadtests.machine import DEFAULT_REDIS_URL
from reservation.gctuning import tune_after_startup

FLOOR_PATH = "/floor"
DEFAULT_PREFIX = "bench-http"


def floor_key(prefix: str) -> str:
    """The one key the floor reads (the benchmark sets it under its run's prefix)."""
    return f"{prefix}:floor"


@contextlib.asynccontextmanager
async def floor_lifespan(app: Starlette) -> AsyncIterator[None]:
    client = Redis.from_url(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL), max_connections=1024)
    app.state.redis = client
    app.state.key = floor_key(os.environ.get("RESERVATION_KEY_PREFIX", DEFAULT_PREFIX))
    tune_after_startup()
    try:
        yield
    finally:
        await client.aclose()


async def floor_endpoint(request: Request) -> JSONResponse:
    client: Redis = request.app.state.redis
    value = await client.get(request.app.state.key)
    return JSONResponse({"value": value.decode() if isinstance(value, bytes) else value})


floor_app = Starlette(
    routes=[Route(FLOOR_PATH, floor_endpoint, methods=["GET"])], lifespan=floor_lifespan
)
