"""The HTTP app in-process (httpx.ASGITransport, lifespan run) on real Redis and MongoDB."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from persistence.mongo import connect
from reservation.api.services import Services
from reservation.app import create_app
from reservation.core.keys import KeySpace
from reservation.settings import Settings
from tests.conftest import REDIS_URL

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# What a raw body (httpx's `content=`) must be sent with; `json=` sets it itself.
JSON = {"Content-Type": "application/json"}


class Api:
    """A client of one app instance, with the services behind it for setting up and checking."""

    def __init__(self, app: Starlette, client: httpx.AsyncClient) -> None:
        self.app = app
        self.http = client

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def put_product(self, sku: str, stock: int, **fields: Any) -> httpx.Response:
        body = {"name": f"Product {sku}", "price": 1500, "currency": "eur", "stock": stock}
        body.update(fields)
        return await self.http.put(f"/v1/products/{sku}", json=body, headers=ADMIN)

    async def reserve(self, *items: tuple[str, int], **fields: Any) -> httpx.Response:
        body = {"items": [{"sku": sku, "quantity": quantity} for sku, quantity in items]}
        body.update(fields)
        return await self.http.post("/v1/reservations", json=body)


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(mongodb_uri: str, keyspace: KeySpace) -> AsyncIterator[MakeApi]:
    """Start apps for this test (settings overridable); clean Redis and MongoDB afterwards."""
    database = f"api_{uuid.uuid4().hex[:12]}"
    base = Settings(
        redis_url=REDIS_URL,
        mongodb_uri=mongodb_uri,
        mongodb_database=database,
        admin_token=ADMIN_TOKEN,
        key_prefix=keyspace.prefix,
        hold_seconds=600,
        sweep_seconds=0,  # tests sweep when they choose (the service's default is every 30 s)
        rebuild_check_seconds=0,  # and rebuild lost counters when they choose (test_recovery)
        outbox_interval_seconds=0,  # and move the shop's events when they choose (test_outbox)
        # Every request of these tests comes from one address (ASGITransport's 127.0.0.1),
        # many with one customer id, and a bad request is counted too: the rate limits are
        # tested on their own (tests/test_ratelimit.py). The hold cap stays at its default.
        ip_rate_limit=0,
        customer_rate_limit=0,
    )
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> Api:
            app = create_app(replace(base, **overrides))
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
            )
            return Api(app, client)

        yield make
    client = Redis.from_url(REDIS_URL)
    async for key in client.scan_iter(match=keyspace.pattern(), count=1000):
        await client.delete(key)
    await client.aclose()
    mongo, _ = connect(mongodb_uri, database)
    await mongo.drop_database(database)
    await mongo.close()


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    return await make_api()
