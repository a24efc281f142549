"""Stock administration: a SKU's counters set (PUT, the CLI), rebuilt from MongoDB
(reconcile), fenced while they are, and read (levels, the catalog's listing, product views)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

from domain import errors
from domain.outcomes import BelowCommitted
from domain.reservations import Listed, StockLevel
from domain.rules import DEFAULT_POOL, check_name, check_stock
from reservation.core.calls import PoolCalls
from reservation.core.keys import KeySpace
from reservation.core.pools import PoolDirectory
from reservation.core.readcache import ReadCache
from reservation.core.redis_errors import storage_errors
from reservation.core.soldout import SoldOutMemory
from reservation.lua._pool import NoCounters, text
from reservation.lua.library import RedisClient
from reservation.lua.product import decode as decode_product
from reservation.lua.restore import decode as decode_restore
from reservation.lua.set_stock import decode as decode_set_stock
from reservation.lua.snapshot import decode as decode_snapshot


class Stock:
    """Each SKU's counters (total, reserved, sold, per-customer limit) and catalog entry."""

    def __init__(
        self,
        client: RedisClient,
        keys: KeySpace,
        calls: PoolCalls,
        pools: PoolDirectory,
        sold_out: SoldOutMemory,
        reads: ReadCache[bytes],
    ) -> None:
        self.client = client
        self.keys = keys
        self.calls = calls
        self.pools = pools
        self.sold_out = sold_out
        self.reads = reads

    async def set_stock(
        self,
        sku: str,
        total: int,
        *,
        pool: str = DEFAULT_POOL,
        max_per_customer: int | None = None,
        keep_limit: bool = False,
        entry: str | None = None,
        existing: bool = False,
        sale: str = "",
        room: str = "",
    ) -> StockLevel:
        """Set stock on hand; refused below reserved + sold, or if the SKU is in another pool.

        `entry` is the SKU's catalog entry (opaque text) to keep beside its counters, so that
        reads of the catalog need nothing else; None keeps the one there is (and its sale
        window and waiting room: `sale` and `room`, lua/_pool.py's encode_sale and encode_room,
        are written with the entry). `existing`: the
        SKU was stocked before, so counters missing from Redis were lost (StorageUnavailable
        while they are rebuilt) rather than started again with nothing sold."""
        check_name(sku, "sku")
        check_name(pool, "pool")
        check_stock(total)
        if max_per_customer is not None:
            check_stock(max_per_customer, "max_per_customer")
        async with storage_errors():
            await self.client.hsetnx(self.keys.sku_pools, sku, pool)
            current = await self.client.hget(self.keys.sku_pools, sku)
            if current is not None and text(current) != pool:
                raise errors.PoolConflict(
                    f"{sku} is stocked in pool {text(current)}", sku=sku, pool=text(current)
                )
            limit: str | int = "" if keep_limit else (max_per_customer or 0)
            again = "1" if existing else "0"
            args: list[str | int] = [sku, total, limit, entry or "", again, sale, room]
            level = decode_set_stock(await self.calls.run(pool, "set_stock", args), sku, pool)
            if isinstance(level, NoCounters):
                raise self.pools.lost(sku)
            await self.client.sadd(self.keys.pools, pool)
        self.pools.learn(sku, pool)
        self.sold_out.forget([sku])
        self.reads.forget()  # also what was read while the pool was being listed
        if isinstance(level, BelowCommitted):
            raise level.error()
        return level

    async def restore(
        self,
        sku: str,
        *,
        total: int,
        sold: int,
        pool: str = DEFAULT_POOL,
        max_per_customer: int | None = None,
        entry: str | None = None,
        sale: str = "",
        room: str = "",
        waitlist: Sequence[str] = (),
    ) -> tuple[StockLevel | None, StockLevel]:
        """Rebuild a SKU's counters from the durable record (reconcile): before and after.

        `total` and `sold` are taken as given; `reserved` is recounted from the live holds.
        The durable catalog decides the SKU's pool (and `entry`, `sale` and `room`, as in
        `set_stock`). `waitlist`: the SKU's waiting list as MongoDB keeps it
        (`Waitlists.restore_args`), put back in line in the same call where Redis lost it.
        """
        check_name(sku, "sku")
        check_name(pool, "pool")
        check_stock(total)
        check_stock(sold, "sold")
        if max_per_customer is not None:
            check_stock(max_per_customer, "max_per_customer")
        async with storage_errors():
            await self.client.hset(self.keys.sku_pools, sku, pool)
            await self.client.sadd(self.keys.pools, pool)
        self.pools.learn(sku, pool)
        self.sold_out.forget([sku])
        args: list[str | int] = [sku, total, sold, max_per_customer or 0, entry or "", sale, room]
        args += waitlist or ["", ""]
        return decode_restore(await self.calls.run(pool, "restore", args), sku, pool)

    @asynccontextmanager
    async def fenced(self, pools: Iterable[str], seconds: float = 120) -> AsyncIterator[None]:
        """While reconcile rebuilds these pools from MongoDB, nothing in them is sold (commit
        and restock answer 503 and Stripe retries); the fence lapses by itself after `seconds`
        should reconcile die."""
        names = sorted({check_name(pool, "pool") for pool in pools})
        async with storage_errors():
            for pool in names:
                await self.client.set(self.keys.pool(pool).fence, "1", px=int(seconds * 1000))
        try:
            yield
        finally:
            async with storage_errors():
                for pool in names:
                    await self.client.delete(self.keys.pool(pool).fence)

    async def levels(
        self, skus: Sequence[str] | None = None, *, pool: str | None = None
    ) -> list[StockLevel]:
        """Counters of the given SKUs (of `pool`, or looked up), or of every SKU of `pool`."""
        return [listed.level for listed in await self.listing(skus, pool=pool)]

    async def level(self, sku: str) -> StockLevel:
        """One SKU's counters (UnknownSku when Redis does not stock it)."""
        levels = await self.levels([sku])
        if not levels:
            raise errors.UnknownSku(f"unknown SKU {sku}", sku=sku)
        return levels[0]

    async def listing(
        self, skus: Sequence[str] | None = None, *, pool: str | None = None
    ) -> list[Listed]:
        """Counters and catalog entry of the given SKUs (of `pool`, or looked up), or of every
        SKU of `pool`: one script call per pool. SKUs Redis does not stock are left out."""
        if skus is not None and not skus:
            return []
        if skus is None or pool is not None:
            name = check_name(pool or DEFAULT_POOL, "pool")
            members = [] if skus is None else [check_name(sku, "sku") for sku in skus]
            return decode_snapshot(await self.calls.run(name, "snapshot", members), name)
        by_pool: dict[str, list[str]] = {}
        for sku in skus:
            by_pool.setdefault(await self.pools.of_sku(sku), []).append(sku)
        found: dict[str, Listed] = {}
        for name, members in by_pool.items():
            reply = await self.calls.run(name, "snapshot", members)
            found.update((listed.level.sku, listed) for listed in decode_snapshot(reply, name))
        return [found[sku] for sku in skus if sku in found]

    async def product_json(self, sku: str) -> bytes | None:
        """The SKU's product view as JSON text, assembled by Redis from its counters and
        catalog entry (one call); None when Redis lacks either (UnknownSku: no pool)."""
        # The hot read: a SKU this process has seen is not looked up (nor checked) again.
        pool = self.pools.known(sku) or await self.pools.of_sku(sku)
        return decode_product(await self.calls.run(pool, "product", (sku, pool)))

    async def keep_entry(
        self, sku: str, pool: str, entry: str, sale: str = "", room: str = ""
    ) -> None:
        """Store a SKU's catalog entry (and sale window and waiting room) beside its counters
        unless one is there: a reader that fell back to MongoDB fills it, and never overwrites
        a newer one written by a PUT."""
        stock = self.keys.pool(check_name(pool, "pool")).stock
        sku = check_name(sku, "sku")
        async with storage_errors():
            if (sale or room) and await self.client.hget(stock, f"{sku}:product") is None:
                if sale:
                    await self.client.hsetnx(stock, f"{sku}:sale", sale)
                if room:
                    await self.client.hsetnx(stock, f"{sku}:room", room)
            await self.client.hsetnx(stock, f"{sku}:product", entry)

    async def expired_holds(self, pool: str) -> int:
        """How many holds of a pool have lapsed so far (a counter kept by the scripts)."""
        async with storage_errors():
            value = await self.client.hget(
                self.keys.pool(check_name(pool, "pool")).stock, ":expired"
            )
        return int(value or 0)
