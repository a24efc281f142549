"""2,000 open event streams on one `reservation serve` worker while the stock changes 100 times
a second (holds of one unit each): every stream ends on the final value; no stream receives
more events than the feed's pace allows (one per 0.25 s of its life, plus the first); and the
feed's reads of Redis follow the same pace, for 2,000 streams as for one.

Only behaviour is asserted. A busy machine makes fewer changes a second and fewer events, never
more: the bounds below are ceilings that slowness cannot break. The rates themselves are
measured by loadtests/bench_stream.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from reservation.api.stock_feed import READ_SECONDS
from reservation.server.open_files import raise_open_files_limit
from tests.api import ADMIN
from tests.server import Server, start_server, stop_server

STREAMS = 2000
CHANGES = 300  # holds of one unit, paced at 100 a second at most
STOCK = 1000
WAIT = 120.0  # generous: 2,000 streams and a server on a shared 2-core machine
OPENING_AT_ONCE = 100
CROWD_ENV: dict[str, Any] = {
    # Every stream comes from 127.0.0.1: the shares of one client address are not the subject.
    "RESERVATION_MAX_CONNECTIONS_PER_CLIENT": "0",
    "RESERVATION_MAX_REQUESTS_PER_CLIENT": "0",
    "RESERVATION_IP_RATE_LIMIT": "0",
}


@dataclass
class Watcher:
    """What one stream received: each event's available count, and when it opened and closed."""

    values: list[int] = field(default_factory=list)
    opened: float = 0.0
    closed: float = 0.0
    first: asyncio.Event = field(default_factory=asyncio.Event)

    async def watch(self, client: httpx.AsyncClient, sku: str) -> None:
        self.opened = time.monotonic()
        try:
            async with client.stream("GET", f"/v1/products/{sku}/events") as response:
                assert response.status_code == 200, await response.aread()
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        self.values.append(json.loads(line[6:])["available"])
                        self.first.set()
        finally:
            self.closed = time.monotonic()


@pytest.fixture(scope="module")
def crowd_server(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("crowd"), mongodb_uri, **CROWD_ENV)
    try:
        yield running
    finally:
        stop_server(running, mongodb_uri)


async def metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    (line,) = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[-1])


async def open_crowd(client: httpx.AsyncClient, sku: str) -> tuple[list[Watcher], list[Any]]:
    """STREAMS streams, each with its first event, opened OPENING_AT_ONCE at a time."""
    watchers = [Watcher() for _ in range(STREAMS)]
    tasks = []
    for start in range(0, STREAMS, OPENING_AT_ONCE):
        batch = watchers[start : start + OPENING_AT_ONCE]
        tasks += [asyncio.create_task(watcher.watch(client, sku)) for watcher in batch]
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(watcher.first.wait() for watcher in batch))
    return watchers, tasks


async def change_stock(client: httpx.AsyncClient, sku: str) -> None:
    """CHANGES holds of one unit, at most 100 a second."""
    body = {"items": [{"sku": sku, "quantity": 1}]}
    for _ in range(CHANGES):
        paced = asyncio.create_task(asyncio.sleep(0.01))
        answer = await client.post("/v1/reservations", json=body)
        assert answer.status_code == 201, answer.text
        await paced


async def until_every_stream_shows(watchers: list[Watcher], final: int) -> None:
    async with asyncio.timeout(WAIT):
        while True:
            if all(watcher.values[-1] == final for watcher in watchers):
                return
            await asyncio.sleep(0.1)


async def test_2000_streams_end_on_the_final_value(crowd_server: Server) -> None:
    raise_open_files_limit()  # each stream is a connection, each connection a file
    limits = httpx.Limits(max_connections=STREAMS + 10, max_keepalive_connections=10)
    async with (
        httpx.AsyncClient(base_url=crowd_server.url, timeout=WAIT, limits=limits) as client,
        httpx.AsyncClient(base_url=crowd_server.url, timeout=WAIT) as driver,
    ):
        body = {"name": "Crowd", "price": 1500, "currency": "eur", "stock": STOCK}
        assert (await driver.put("/v1/products/crowd", json=body, headers=ADMIN)).is_success
        reads_before, started = (
            await metric(driver, "reservation_stock_feed_reads"),
            time.monotonic(),
        )
        watchers, tasks = await open_crowd(client, "crowd")
        try:
            assert await metric(driver, "reservation_event_streams") == STREAMS
            await change_stock(driver, "crowd")
            final = STOCK - CHANGES
            await until_every_stream_shows(watchers, final)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        reads = await metric(driver, "reservation_stock_feed_reads") - reads_before
        elapsed = time.monotonic() - started

    assert all(watcher.values[-1] == final for watcher in watchers)
    # Coalesced: a stream gets its first value, then at most one per reader tick of its life.
    for watcher in watchers:
        assert len(watcher.values) <= (watcher.closed - watcher.opened) / READ_SECONDS + 2
    # One reader for all 2,000: the feed's reads follow its pace, not the number of streams.
    assert reads <= elapsed / READ_SECONDS + 2
