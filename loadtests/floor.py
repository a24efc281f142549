"""The HTTP benchmark's floor: a bare Starlette app, one route doing one Redis GET (after
reading the body, when the request is a POST).

Served by `python -m loadtests.floor --port P` exactly as `reservation serve` serves the API:
uvicorn with uvloop and the service's own HTTP protocol (reservation.server.protocol: httptools
with the bounds of what a client may take, and an answer's head and body sent in one write),
1 worker, no access log. Served by uvicorn's stock protocol instead, the floor would pay a
second write per answer the service does not, and the ratio would credit the app with a
difference of the server. It imports only what the app and the server need, so its process
holds what a bare Starlette app holds (the benchmark's own tools — httpx, pymongo, matplotlib
— would double its heap), and it applies the service's garbage-collector settings after
start-up, and its Redis connections are redis-py's, like the service's, so the floor and the
service differ only in the code a request runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Sequence

import uvicorn
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from loadtests.machine import DEFAULT_REDIS_URL
from reservation.server.gctuning import tune_after_startup
from reservation.server.limits import ClientLimits
from reservation.server.open_files import raise_open_files_limit
from reservation.server.protocol import ServiceConfig
from reservation.settings import Settings

FLOOR_PATH = "/floor"
DEFAULT_PREFIX = "bench-http"


def floor_key(prefix: str) -> str:
    """The one key the floor reads (the benchmark sets it under its run's prefix)."""
    return f"{prefix}:floor"


@contextlib.asynccontextmanager
async def floor_lifespan(app: Starlette) -> AsyncIterator[None]:
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    # The service's connection class (commands packed by hiredis), so that the floor and the
    # service differ in the code a request runs, not in how redis-py packs a command.
    client = Redis.from_url(url, max_connections=1024)
    app.state.redis = client
    app.state.key = floor_key(os.environ.get("RESERVATION_KEY_PREFIX", DEFAULT_PREFIX))
    tune_after_startup()
    try:
        yield
    finally:
        await client.aclose()


async def floor_endpoint(request: Request) -> JSONResponse:
    """GET: one Redis GET. POST: the body read whole first (what a reserve receives), then the
    same GET: the floor of a request that carries a body."""
    if request.method == "POST":
        await request.body()
    client: Redis = request.app.state.redis
    value = await client.get(request.app.state.key)
    return JSONResponse({"value": value.decode() if isinstance(value, bytes) else value})


floor_app = Starlette(
    routes=[Route(FLOOR_PATH, floor_endpoint, methods=["GET", "POST"])], lifespan=floor_lifespan
)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the floor as `reservation serve` serves the API (one worker)."""
    parser = argparse.ArgumentParser(prog="python -m loadtests.floor")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    raise_open_files_limit()
    settings = Settings.from_env()  # the service's bounds, as the benchmark sets them for both
    config = ServiceConfig(
        "loadtests.floor:floor_app",
        ClientLimits.of(settings),
        host=args.host,
        port=args.port,
        access_log=False,
        log_level="warning",
        timeout_keep_alive=settings.keep_alive_seconds,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
