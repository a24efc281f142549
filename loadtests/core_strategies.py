"""The ways bench_core holds 1 unit of the hot SKU on Redis: this project's reserve script
(lua), the round-trip floor (floor), WATCH/MULTI (watch) and a lock (lock); the base every
strategy, PostgreSQL's too (loadtests/core_postgres.py), fills in."""

from __future__ import annotations

import secrets
import time
from enum import Enum

from redis.asyncio import Redis
from redis.exceptions import WatchError

from domain.outcomes import Held, OutOfStock
from loadtests.cleanup import delete_matching
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace

SKU = "hot"
HOLD_SECONDS = 600  # the hold length every strategy writes (Inventory's default)
LOCK_TIMEOUT_SECONDS = 5.0  # the lock expires by itself after this (a crashed holder)
LOCK_WAIT_SECONDS = 1.0  # blocking_timeout: give up waiting, count a retry, try again
LOCK_POLL_SECONDS = 0.01  # redis-py's Lock polls SET NX this often while blocked (default 0.1)
FLOOR_LUA = "return redis.call('INCR', KEYS[1])"


def count(value: bytes | str | None) -> int:
    """A Redis counter's value; a missing counter is an error here, not zero."""
    if value is None:
        raise RuntimeError("the stock counter is gone")
    return int(value)


class Outcome(Enum):
    HELD = "held"
    SOLD_OUT = "sold out"
    GAVE_UP = "gave up"  # still retrying when the deadline passed


class Strategy:
    """One way of holding 1 unit of SKU; subclasses fill in prepare / hold / taken."""

    name = "strategy"
    sells = True  # False: no stock at all (the floor), so there is nothing to oversell

    def __init__(self) -> None:
        self.retries = 0

    async def setup(self) -> None:
        """Once per run, before anything else."""

    async def start(self, concurrency: int) -> None:
        """Before the phases of one concurrency."""

    async def prepare(self, stock: int) -> None:
        """A fresh store holding `stock` units of SKU."""
        raise NotImplementedError

    async def hold(self, deadline: float) -> Outcome:
        """Hold 1 unit; a strategy that retries gives up once perf_counter() passes deadline."""
        raise NotImplementedError

    async def taken(self) -> int | None:
        """Units the store itself says are held or sold (None: the strategy sells nothing)."""
        raise NotImplementedError

    async def clear(self) -> None:
        """Drop what the last prepare and its holds wrote."""

    async def stop(self) -> None:
        """After the phases of one concurrency."""

    async def teardown(self) -> None:
        """Once per run, at the end, even after a failure."""


class RedisStrategy(Strategy):
    """A strategy on the shared Redis client; each prepare gets a key space of its own."""

    def __init__(self, client: Redis, prefix: str) -> None:
        super().__init__()
        self.client = client
        self.prefix = prefix
        self.phase = 0
        self.space = ""
        self.stock = 0

    def next_space(self) -> str:
        self.phase += 1
        self.space = f"{self.prefix}:{self.name}:{self.phase}"
        return self.space

    async def clear(self) -> None:
        await delete_matching(self.client, f"{self.space}:*")


class LuaStrategy(RedisStrategy):
    """This project's core: one reserve script call per hold."""

    name = "lua"

    async def prepare(self, stock: int) -> None:
        self.inventory = Inventory(self.client, keys=KeySpace(self.next_space()))
        await self.inventory.stock.set_stock(SKU, stock)

    async def hold(self, deadline: float) -> Outcome:
        outcome = await self.inventory.holds.reserve([(SKU, 1)])
        if isinstance(outcome, Held):
            return Outcome.HELD
        if isinstance(outcome, OutOfStock):
            return Outcome.SOLD_OUT
        raise RuntimeError(f"unexpected reserve outcome: {outcome!r}")

    async def taken(self) -> int:
        level = await self.inventory.stock.level(SKU)
        return level.reserved + level.sold


class FloorStrategy(RedisStrategy):
    """The round-trip floor: a one-command script (EVALSHA of INCR), no stock logic."""

    name = "floor"
    sells = False

    async def prepare(self, stock: int) -> None:
        self.counter = f"{self.next_space()}:counter"
        self.script = self.client.register_script(FLOOR_LUA)

    async def hold(self, deadline: float) -> Outcome:
        await self.script(keys=[self.counter])
        return Outcome.HELD

    async def taken(self) -> None:
        return None


class WatchStrategy(RedisStrategy):
    """Optimistic read-modify-write: WATCH, GET, MULTI DECR + SET the hold, EXEC; retry."""

    name = "watch"

    async def prepare(self, stock: int) -> None:
        self.stock_key = f"{self.next_space()}:stock:{SKU}"
        self.stock = stock
        await self.client.set(self.stock_key, stock)

    async def hold(self, deadline: float) -> Outcome:
        record = f"{self.space}:hold:{secrets.token_urlsafe(16)}"
        async with self.client.pipeline(transaction=True) as pipe:
            while time.perf_counter() < deadline:
                try:
                    await pipe.watch(self.stock_key)
                    if count(await pipe.get(self.stock_key)) < 1:
                        return Outcome.SOLD_OUT
                    pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
                    pipe.decr(self.stock_key)
                    pipe.set(record, f"{SKU}=1", ex=HOLD_SECONDS)
                    await pipe.execute()
                    return Outcome.HELD
                except WatchError:
                    self.retries += 1
        return Outcome.GAVE_UP

    async def taken(self) -> int:
        return self.stock - count(await self.client.get(self.stock_key))


class LockStrategy(RedisStrategy):
    """A redis-py Lock around GET, check, SET available - 1 and SET the hold."""

    name = "lock"

    async def prepare(self, stock: int) -> None:
        space = self.next_space()
        self.stock_key = f"{space}:stock:{SKU}"
        self.lock_name = f"{space}:lock:{SKU}"
        self.stock = stock
        await self.client.set(self.stock_key, stock)

    async def hold(self, deadline: float) -> Outcome:
        # One Lock object per hold: a Lock keeps its token per thread, and every buyer
        # coroutine runs on this one thread.
        lock = self.client.lock(
            self.lock_name,
            timeout=LOCK_TIMEOUT_SECONDS,
            sleep=LOCK_POLL_SECONDS,
            raise_on_release_error=False,  # a lock lost to expiry shows up as oversold
        )
        while not await lock.acquire(blocking_timeout=self.wait(deadline)):
            self.retries += 1
            if time.perf_counter() >= deadline:
                return Outcome.GAVE_UP
        try:
            return await self.take_one()
        finally:
            await lock.release()

    @staticmethod
    def wait(deadline: float) -> float:
        """blocking_timeout of one acquire: LOCK_WAIT_SECONDS, cut short by the deadline."""
        return max(0.0, min(LOCK_WAIT_SECONDS, deadline - time.perf_counter()))

    async def take_one(self) -> Outcome:
        available = count(await self.client.get(self.stock_key))
        if available < 1:
            return Outcome.SOLD_OUT
        record = f"{self.space}:hold:{secrets.token_urlsafe(16)}"
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(self.stock_key, available - 1)
            pipe.set(record, f"{SKU}=1", ex=HOLD_SECONDS)
            await pipe.execute()
        return Outcome.HELD

    async def taken(self) -> int:
        return self.stock - count(await self.client.get(self.stock_key))
