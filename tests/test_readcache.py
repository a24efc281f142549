"""The read cache: concurrent reads share one fetch, writes of this process are read at once,
another process's writes are read once the answer is older than its seconds."""

from __future__ import annotations

import asyncio

import pytest

from domain import errors
from domain.outcomes import Held
from reservation.core.inventory import Inventory
from reservation.core.readcache import ReadCache
from tests.conftest import MakeInventory


class Source:
    """Counts fetches; each fetch waits for `gate` so that readers can pile up behind it."""

    def __init__(self) -> None:
        self.fetches = 0
        self.value = b"v1"
        self.gate = asyncio.Event()
        self.gate.set()
        self.error: Exception | None = None

    async def load(self) -> bytes:
        self.fetches += 1
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.value


async def test_concurrent_reads_share_one_fetch_and_reuse_it() -> None:
    cache: ReadCache[bytes] = ReadCache(60)
    source = Source()
    source.gate.clear()
    readers = [asyncio.ensure_future(cache.get("k", source.load)) for _ in range(50)]
    await asyncio.sleep(0)
    source.gate.set()
    assert await asyncio.gather(*readers) == [b"v1"] * 50
    assert await cache.get("k", source.load) == b"v1"
    assert source.fetches == 1
    assert await cache.get("other", source.load) == b"v1"
    assert source.fetches == 2


async def test_an_answer_is_fetched_again_once_it_is_older_than_its_seconds() -> None:
    cache: ReadCache[bytes] = ReadCache(0.05)
    source = Source()
    assert await cache.get("k", source.load) == b"v1"
    source.value = b"v2"
    await asyncio.sleep(0.1)
    assert await cache.get("k", source.load) == b"v2"
    assert source.fetches == 2


async def test_zero_seconds_is_off() -> None:
    cache: ReadCache[bytes] = ReadCache(0)
    source = Source()
    for _ in range(3):
        await cache.get("k", source.load)
    assert source.fetches == 3


async def test_forget_drops_answers_and_fetches_in_flight() -> None:
    cache: ReadCache[bytes] = ReadCache(60)
    source = Source()
    await cache.get("k", source.load)
    cache.forget()
    source.value = b"v2"
    assert await cache.get("k", source.load) == b"v2"
    # A fetch in flight when this process writes may have read before the write: readers
    # arriving after the write do not join it, and its answer is not remembered.
    source.gate.clear()
    before = asyncio.ensure_future(cache.get("k2", source.load))
    await asyncio.sleep(0)
    cache.forget()
    source.value = b"v3"
    after = asyncio.ensure_future(cache.get("k2", source.load))
    await asyncio.sleep(0)
    source.gate.set()
    assert await after == b"v3"
    await before
    assert await cache.get("k2", source.load) == b"v3"
    assert source.fetches == 4


async def test_errors_reach_every_waiting_reader_and_are_not_remembered() -> None:
    cache: ReadCache[bytes] = ReadCache(60)
    source = Source()
    source.error = errors.UnknownSku("unknown SKU k", sku="k")
    source.gate.clear()
    readers = [asyncio.ensure_future(cache.get("k", source.load)) for _ in range(3)]
    await asyncio.sleep(0)
    source.gate.set()
    for outcome in await asyncio.gather(*readers, return_exceptions=True):
        assert isinstance(outcome, errors.UnknownSku)
    source.error = None
    assert await cache.get("k", source.load) == b"v1"
    assert source.fetches == 2


async def test_a_reader_that_goes_away_does_not_cancel_the_others() -> None:
    cache: ReadCache[bytes] = ReadCache(60)
    source = Source()
    source.gate.clear()
    leaving = asyncio.ensure_future(cache.get("k", source.load))
    staying = asyncio.ensure_future(cache.get("k", source.load))
    await asyncio.sleep(0)
    leaving.cancel()
    source.gate.set()
    assert await staying == b"v1"
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert source.fetches == 1


async def test_on_redis_a_process_sees_its_own_holds_at_once_and_others_within_seconds(
    make_inventory: MakeInventory,
) -> None:
    ours: Inventory = await make_inventory(read_cache_seconds=60)
    brief: Inventory = await make_inventory(read_cache_seconds=0.2)
    theirs: Inventory = await make_inventory(read_cache_seconds=60)
    await ours.stock.set_stock("tee", 5, entry='{"name":"Tee","price":1500,"currency":"eur"}')

    async def available(inventory: Inventory) -> int:
        async def load() -> bytes:
            found = await inventory.stock.product_json("tee")
            assert found is not None
            return found

        text = await inventory.reads.get(("product", "tee"), load)
        return int(text.split(b'"available":')[1].split(b",")[0].rstrip(b"}"))

    assert [await available(each) for each in (ours, brief, theirs)] == [5, 5, 5]
    await theirs.holds.reserve([("tee", 2)])
    assert await available(theirs) == 3  # its own write, at once
    assert await available(ours) == 5  # another's write: remembered for up to its 60 s
    await asyncio.sleep(0.25)
    assert await available(brief) == 3  # ... and read again once older than its 0.2 s
    again = await theirs.holds.reserve([("tee", 1)])
    assert isinstance(again, Held)
    await ours.holds.release(again.reservation.id)
    assert await available(ours) == 3  # its own write (a release) forgets what it read
