"""The pool directory: which pool each SKU is stocked in, which pools stock anything, the keys
of each, remembered by this process; and what the core does when Redis lost its counters."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from domain import errors
from domain.reservations import CartLine
from domain.rules import check_name
from reservation.core.keys import KeySpace, PoolKeys
from reservation.core.redis_errors import storage_errors
from reservation.lua._pool import text
from reservation.lua.library import RedisClient


class PoolDirectory:
    """sku -> pool in Redis (`sku-pools`) and the set of pools, with this process' caches."""

    def __init__(self, client: RedisClient, keys: KeySpace) -> None:
        self.client = client
        self.keys = keys
        # sku -> pool. A SKU never changes pool (set_stock refuses), so entries stay true.
        self._by_sku: dict[str, str] = {}
        self._keys: dict[str, PoolKeys] = {}
        self._stocked: tuple[float, list[str]] = (-math.inf, [])
        # Called when a request finds counters missing because Redis lost them (the service
        # sets it to start a rebuild: reservation.operations.recovery); None: only report the loss.
        self.on_lost: Callable[[], None] | None = None

    async def of_sku(self, sku: str) -> str:
        """The pool a SKU is stocked in (UnknownSku if none)."""
        check_name(sku, "sku")
        pool = self._by_sku.get(sku)
        if pool is None:
            async with storage_errors():
                found = await self.client.hget(self.keys.sku_pools, sku)
            pool = self._by_sku[sku] = text(found) if found else await self._unknown(sku)
        return pool

    def known(self, sku: str) -> str | None:
        """The SKU's pool if this process has seen it (nothing is asked or checked)."""
        return self._by_sku.get(sku)

    async def of_cart(self, lines: Sequence[CartLine]) -> str:
        """The one pool every line of a cart is stocked in (MixedPools otherwise)."""
        cached = self._by_sku
        if len(lines) == 1 and (known := cached.get(lines[0].sku)):
            return known  # the usual cart: one line, its pool known
        pools = {line.sku: cached.get(line.sku) or await self.of_sku(line.sku) for line in lines}
        distinct = sorted(set(pools.values()))
        if len(distinct) > 1:
            raise errors.MixedPools(
                "a cart can only hold SKUs of one pool", pools=distinct, skus=pools
            )
        return distinct[0]

    def keys_of(self, pool: str) -> PoolKeys:
        """The keys of a pool; remembered only for pools that stock something, since a
        reservation id from a client can name any pool and this cache must not grow with them."""
        keys = self._keys.get(pool)
        if keys is None:
            keys = self.keys.pool(pool)
            if pool in self._by_sku.values():
                self._keys[pool] = keys
        return keys

    async def stocked(self, max_age: float = 0.0) -> list[str]:
        """Every pool that stocks something; with `max_age`, as read at most that long ago."""
        now = time.monotonic()
        read_at, names = self._stocked
        # An empty answer is not kept: it means Redis is empty or being rebuilt.
        if max_age > 0 and names and now - read_at <= max_age:
            return names
        async with storage_errors():
            members = await self.client.smembers(self.keys.pools)
        names = sorted(text(member) for member in members)
        self._stocked = (now, names)
        return names

    def learn(self, sku: str, pool: str) -> None:
        """This process now knows the SKU's pool (and that the pool stocks something)."""
        self._by_sku[sku] = pool
        read_at, names = self._stocked
        if pool not in names:
            self._stocked = (read_at, sorted([*names, pool]))

    def forget(self) -> None:
        """Forget every SKU's pool: Redis lost counters, so what it answers is asked again."""
        self._by_sku.clear()

    # -- counters Redis lost ---------------------------------------------------------------

    async def counters_lost(self) -> bool:
        """Whether Redis lacks the marker that counters were built beside MongoDB (`mark_built`):
        it lost them (restarted empty, flushed) or never had any."""
        async with storage_errors():
            return not await self.client.exists(self.keys.built)

    async def mark_built(self) -> None:
        """The counters were built from MongoDB (operations/recovery.py, after a rebuild)."""
        async with storage_errors():
            await self.client.set(self.keys.built, "1")

    async def _unknown(self, sku: str) -> str:
        """UnknownSku; but when this service rebuilds lost counters (`on_lost` is set) and
        Redis lacks the rebuild's marker, Redis lost them: 503 while they are rebuilt. A
        rebuild that finished a moment ago has put the SKU back: its pool is returned."""
        if self.on_lost is not None:
            if await self.counters_lost():
                raise self.lost(sku)
            async with storage_errors():
                found = await self.client.hget(self.keys.sku_pools, sku)
            if found is not None:
                return text(found)
        raise errors.UnknownSku(f"unknown SKU {sku}", sku=sku)

    def no_counters(self, sku: str) -> errors.ReservationError:
        """A script found no counters for a SKU this process knew the pool of: Redis lost
        them (a rebuild may even have put them back since). With recovery, the service answers
        503 and rebuilds, and the client's retry is served; without, the SKU is unknown."""
        self.forget()
        if self.on_lost is not None:
            return self.lost(sku)
        return errors.UnknownSku(f"unknown SKU {sku}", sku=sku)

    def lost(self, sku: str) -> errors.StorageUnavailable:
        """Redis has no counters for a SKU that has them in MongoDB: it lost them. With
        `on_lost` set a rebuild starts (and the caller answers 503 until it is done)."""
        if self.on_lost is None:
            return errors.StorageUnavailable(
                f"Redis has no stock counters for {sku}: run `reservation reconcile`",
                backend="redis",
                sku=sku,
            )
        self.on_lost()
        return errors.StorageUnavailable(
            f"Redis lost the counters of {sku}: they are being rebuilt from MongoDB, retry",
            backend="redis",
            sku=sku,
        )
