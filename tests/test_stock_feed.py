"""The stock feed (reservation/api/stock_feed.py) in-process: one reader per watched SKU
whatever the number of watchers, slow watchers skip to the latest value, a failed read keeps
the last one, the first read's error is every waiting watcher's, the last watcher stops the
reader, the cap on streams; and, against a Redis of its own, the Redis commands per reader tick
are the same for 1 watcher as for 50.

The readers here read from a queue the test fills (`Product`), so every tick is the test's:
nothing waits on a clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.errors import ServerBusy, StorageUnavailable, UnknownSku
from harness import servers
from reservation.api.products import product_reader
from reservation.api.stock_events import stock_frame
from reservation.api.stock_feed import StockFeed, Subscription
from tests.api import MakeApi

WAIT = 30.0  # generous: how long a test waits for what must happen


def value(sku: str, available: int, on_sale: bool = True) -> bytes:
    """A product view's JSON, as the catalog reads it (more members than an event takes)."""
    view = {"sku": sku, "name": "Tee", "price": 100, "available": available, "on_sale": on_sale}
    return json.dumps(view).encode()


class Product:
    """The reads of one SKU: each read takes the next answer the test puts (a value or an
    error), and counts itself."""

    def __init__(self) -> None:
        self.answers: asyncio.Queue[bytes | Exception] = asyncio.Queue()
        self.reads = 0

    async def read(self, sku: str) -> bytes:
        answer = await self.answers.get()
        self.reads += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
async def product() -> Product:
    return Product()


@pytest.fixture
async def feed(product: Product) -> AsyncIterator[StockFeed]:
    feed = StockFeed(product.read, stock_frame, max_streams=100, read_seconds=0)
    yield feed
    await feed.close()


def data_of(frame: bytes) -> dict[str, Any]:
    (line,) = [line for line in frame.decode().splitlines() if line.startswith("data: ")]
    parsed: dict[str, Any] = json.loads(line.removeprefix("data: "))
    return parsed


async def until(condition: Callable[[], bool]) -> None:
    """Wait (turns of the loop, never a clock) until `condition` holds."""
    async with asyncio.timeout(WAIT):
        while True:
            if condition():
                return
            await asyncio.sleep(0)


async def test_the_first_value_and_every_change_reach_every_watcher(
    feed: StockFeed, product: Product
) -> None:
    product.answers.put_nowait(value("tee", 10))
    watchers = await asyncio.gather(*(feed.subscribe("tee") for _ in range(50)))
    assert len(feed.channels) == 1
    assert feed.streams == 50
    firsts = [await watcher.after(0) for watcher in watchers]
    assert {data_of(frame)["available"] for _, frame in firsts} == {10}
    assert data_of(firsts[0][1]) == {"sku": "tee", "available": 10, "on_sale": True}
    version = firsts[0][0]
    assert b"event: stock" in firsts[0][1]
    assert f"id: {version}".encode() in firsts[0][1]

    product.answers.put_nowait(value("tee", 9, on_sale=False))
    nexts = [await watcher.after(version) for watcher in watchers]
    assert {data_of(frame)["available"] for _, frame in nexts} == {9}
    assert all(next_version > version for next_version, _ in nexts)
    assert product.reads == 2  # one reader for all 50
    for watcher in watchers:
        watcher.close()


async def test_an_unchanged_value_makes_no_event(feed: StockFeed, product: Product) -> None:
    product.answers.put_nowait(value("tee", 10))
    watcher = await feed.subscribe("tee")
    version, _ = await watcher.after(0)
    for _ in range(3):
        product.answers.put_nowait(value("tee", 10))
    product.answers.put_nowait(value("tee", 8))
    next_version, frame = await watcher.after(version)
    assert data_of(frame)["available"] == 8
    assert product.reads == 5
    assert feed.channels["tee"].version == next_version
    watcher.close()


async def test_a_slow_watcher_skips_to_the_latest_value(feed: StockFeed, product: Product) -> None:
    product.answers.put_nowait(value("tee", 10))
    watcher = await feed.subscribe("tee")
    version, _ = await watcher.after(0)
    for available in (9, 8, 7, 6):
        product.answers.put_nowait(value("tee", available))
    await until(lambda: product.reads == 5)
    # The watcher was not reading meanwhile: it gets the value now, not the four in turn.
    latest, frame = await watcher.after(version)
    assert data_of(frame)["available"] == 6
    assert latest == feed.channels["tee"].version
    watcher.close()


async def test_a_failed_read_keeps_the_last_value_and_the_reader_tries_again(
    feed: StockFeed, product: Product, caplog: pytest.LogCaptureFixture
) -> None:
    product.answers.put_nowait(value("tee", 10))
    watcher = await feed.subscribe("tee")
    version, _ = await watcher.after(0)
    waiting = asyncio.ensure_future(watcher.after(version))
    with caplog.at_level(logging.INFO, logger="reservation.stock_feed"):
        for _ in range(3):
            product.answers.put_nowait(StorageUnavailable("redis down", backend="redis"))
        await until(lambda: product.reads == 4)
        assert not waiting.done()  # nothing new to send: the stream keeps its last value
        assert feed.channels["tee"].version == version
        product.answers.put_nowait(value("tee", 4))
        _, frame = await asyncio.wait_for(waiting, WAIT)
    assert data_of(frame)["available"] == 4
    outcomes = [getattr(record, "outcome", None) for record in caplog.records]
    assert outcomes == ["read_failed", "resumed"]  # one warning for the failing streak
    watcher.close()


async def test_the_first_reads_error_is_every_waiting_watchers(
    feed: StockFeed, product: Product
) -> None:
    waiting = [asyncio.ensure_future(feed.subscribe("nope")) for _ in range(3)]
    await until(lambda: feed.streams == 3)
    product.answers.put_nowait(UnknownSku("unknown SKU nope", sku="nope"))
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(result, UnknownSku) for result in results)
    assert feed.channels == {}
    assert feed.streams == 0
    # The next watcher starts again with a read of its own.
    product.answers.put_nowait(value("nope", 1))
    watcher = await feed.subscribe("nope")
    assert data_of((await watcher.after(0))[1])["available"] == 1
    watcher.close()


async def test_the_last_watcher_to_leave_stops_the_reader(
    feed: StockFeed, product: Product
) -> None:
    product.answers.put_nowait(value("tee", 10))
    first = await feed.subscribe("tee")
    second = await feed.subscribe("tee")
    reader = feed.channels["tee"].reader
    assert reader is not None
    first.close()
    first.close()  # closing twice counts once
    assert not reader.done()
    assert feed.streams == 1
    second.close()
    await asyncio.gather(reader, return_exceptions=True)
    assert reader.cancelled()
    assert feed.channels == {}
    assert feed.streams == 0


async def test_a_watcher_gone_before_the_first_value_leaves_nothing(
    feed: StockFeed, product: Product
) -> None:
    waiting = asyncio.ensure_future(feed.subscribe("tee"))
    await until(lambda: feed.streams == 1)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert feed.channels == {}
    assert feed.streams == 0


async def test_past_the_cap_a_new_stream_is_refused(product: Product) -> None:
    feed = StockFeed(product.read, stock_frame, max_streams=2, read_seconds=0)
    product.answers.put_nowait(value("tee", 10))
    watchers = [await feed.subscribe("tee"), await feed.subscribe("tee")]
    with pytest.raises(ServerBusy) as refused:
        await feed.subscribe("cap")
    assert refused.value.details == {"limit": 2}
    assert feed.streams == 2  # the refusal read nothing
    assert set(feed.channels) == {"tee"}
    watchers.pop().close()
    watchers.append(await feed.subscribe("tee"))
    for watcher in watchers:
        watcher.close()
    await feed.close()


# -- Redis work per tick, against a Redis of its own ------------------------------------------


async def commands_per_tick(
    read: Callable[[str], Awaitable[bytes]], redis: Redis, watchers: int, ticks: int = 20
) -> dict[str, float]:
    """The Redis commands of `ticks` reader ticks while `watchers` watch one SKU, per tick,
    counted by INFO commandstats between the end of one tick and the end of another."""
    stats: list[dict[str, int]] = []
    done = asyncio.Event()
    reads = 0

    async def counted(sku: str) -> bytes:
        nonlocal reads
        answer = await read(sku)
        reads += 1
        if reads in (5, 5 + ticks):
            stats.append(await command_calls(redis))
            if len(stats) == 2:
                done.set()
        return answer

    feed = StockFeed(counted, stock_frame, max_streams=watchers, read_seconds=0.01)
    subscriptions: list[Subscription] = [await feed.subscribe("tee") for _ in range(watchers)]
    try:
        await asyncio.wait_for(done.wait(), WAIT)
    finally:
        for subscription in subscriptions:
            subscription.close()
        await feed.close()
    before, after = stats
    return {
        name: (calls - before.get(name, 0)) / ticks
        for name, calls in after.items()
        if calls != before.get(name, 0) and name != "info"
    }


async def command_calls(redis: Redis) -> dict[str, int]:
    info: dict[str, Any] = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in info.items()}


async def test_redis_work_per_tick_does_not_grow_with_the_watchers(
    make_api: MakeApi, tmp_path: Path
) -> None:
    if servers.REDIS_SERVER is None:
        pytest.skip("redis-server binary not found: this test needs a Redis of its own")
    own = servers.RedisServer(tmp_path / "redis")
    own.start()
    redis = Redis.from_url(own.url)
    try:
        # Every tick reads Redis (no read cache), and nothing else of the app runs meanwhile
        # (make_api: no sweeper, no rebuild check).
        api = await make_api(redis_url=own.url, read_cache_seconds=0)
        assert (await api.put_product("tee", 10)).status_code == 200
        read = product_reader(api.services)
        one = await commands_per_tick(read, redis, watchers=1)
        fifty = await commands_per_tick(read, redis, watchers=50)
    finally:
        await redis.aclose()
        own.stop()
    # One product script per tick (commandstats counts the calls inside it too: its HMGET
    # and TIME), whoever watches.
    assert one == fifty
    assert one == {"fcall": 1.0, "hmget": 1.0, "time": 1.0}
