"""The Python face of the scripts: typed calls in, typed outcomes out."""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.exceptions import RedisError

from domain import errors
from domain.outcomes import (
    CommitOutcome,
    Committed,
    CommittedLate,
    CustomerRequired,
    Extended,
    ExtendOutcome,
    Held,
    NotExtended,
    OutOfStock,
    OverCustomerLimit,
    OverHoldCap,
    Oversold,
    Released,
    ReleaseOutcome,
    ReleaseRefused,
    ReserveOutcome,
)
from domain.reservations import (
    CartLine,
    Listed,
    Reservation,
    ReservationStatus,
    StockLevel,
    from_epoch_ms,
)
from domain.rules import (
    DEFAULT_POOL,
    MAX_STOCK,
    NAME_PATTERN,
    TOKEN_REGEX,
    check_name,
    check_stock,
)
from reservation.core.cart import (
    CartInput,
    check_customer,
    decode_cart,
    encode_cart,
    normalize_cart,
)
from reservation.core.keys import KeySpace, PoolKeys
from reservation.core.readcache import ReadCache
from reservation.core.soldout import SoldOutMemory
from reservation.lua.library import RedisClient, Scripts

TOKEN_PATTERN = re.compile(TOKEN_REGEX)
# Scripts that only read (and reclaim lapsed holds, which a reader's answer already reflects).
READ_SCRIPTS = frozenset({"snapshot", "product", "lookup"})
# Scripts that sell, and so read the pool's fence (KEYS[5]); the others take 4 keys.
FENCED_SCRIPTS = frozenset({"commit", "restock"})


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# Random bytes of a new reservation id: 96 bits, unguessable, and 16 characters of URL-safe
# base64 (the id is part of the record's key and of its member in `holds`: every byte is
# stored twice per live hold).
TOKEN_BYTES = 12


def new_reservation_id(pool: str) -> str:
    """A random, URL-safe id that names its pool: "<pool>.<token>"."""
    return f"{pool}.{secrets.token_urlsafe(TOKEN_BYTES)}"


def pool_of_reservation(reservation_id: object) -> str:
    if isinstance(reservation_id, str):
        pool, dot, token = reservation_id.rpartition(".")
        if dot and TOKEN_PATTERN.fullmatch(token) and NAME_PATTERN.fullmatch(pool):
            return pool
    quoted = reservation_id if isinstance(reservation_id, str) else repr(reservation_id)
    raise errors.NotFound("no such reservation", reservation_id=quoted[:80])


def storage_unavailable(exc: RedisError) -> errors.StorageUnavailable:
    return errors.StorageUnavailable(f"Redis did not answer: {type(exc).__name__}", backend="redis")


@asynccontextmanager
async def storage_errors() -> AsyncIterator[None]:
    """Redis failures leave the core as StorageUnavailable."""
    try:
        yield
    except RedisError as exc:
        raise storage_unavailable(exc) from exc


class Inventory:
    """Stock, holds and their lifecycle in Redis; every change is one atomic script call."""

    def __init__(
        self,
        client: RedisClient,
        *,
        keys: KeySpace | None = None,
        hold_seconds: float = 600,
        retention_seconds: float = 3 * 24 * 3600,
        reclaim_batch: int = 64,
        sold_out_seconds: float = 0.0,
        read_cache_seconds: float = 0.0,
        require_customer: bool = False,
        max_holds_per_customer: int = 0,
    ) -> None:
        if hold_seconds <= 0 or retention_seconds < 0 or reclaim_batch < 1:
            raise ValueError("hold_seconds > 0, retention_seconds >= 0, reclaim_batch >= 1")
        if not 0 <= max_holds_per_customer <= MAX_STOCK:
            raise ValueError("0 <= max_holds_per_customer <= 10^12 (0: no cap)")
        self.client = client
        self.keys = keys or KeySpace()
        self.hold_ms = int(hold_seconds * 1000)
        self.retention_ms = int(retention_seconds * 1000)
        self.reclaim_batch = reclaim_batch
        self._batch_arg = str(reclaim_batch).encode()
        self.scripts = Scripts.register(client)
        # sku -> pool. A SKU never changes pool (set_stock refuses), so entries stay true.
        self._pools: dict[str, str] = {}
        self._pool_keys: dict[str, PoolKeys] = {}
        self.sold_out = SoldOutMemory(sold_out_seconds)
        # Product reads (JSON answers) remembered briefly; any write of this process forgets.
        self.reads: ReadCache[bytes] = ReadCache(read_cache_seconds)
        self._pool_list: tuple[float, list[str]] = (-math.inf, [])
        # Refuse carts without a customer id that hold a SKU with a per-customer limit.
        self.require_customer = require_customer
        # The most live holds (held, not paid) one customer id may have in a pool; 0: no cap.
        self.max_holds_per_customer = max_holds_per_customer
        # The reserve script's arguments that are the same on every call, encoded once.
        self._hold_arg = str(self.hold_ms).encode()
        self._retention_arg = str(self.retention_ms).encode()
        self._reserve_tail = b"1" if require_customer else b"0"
        self._cap_arg = str(max_holds_per_customer).encode()
        # Called when a request finds counters missing because Redis lost them (the service
        # sets it to start a rebuild: reservation.operations.recovery); None: only report the loss.
        self.on_lost: Callable[[], None] | None = None

    # -- stock -------------------------------------------------------------------------

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
    ) -> StockLevel:
        """Set stock on hand; refused below reserved + sold, or if the SKU is in another pool.

        `entry` is the SKU's catalog entry (opaque text) to keep beside its counters, so that
        reads of the catalog need nothing else; None keeps the one there is. `existing`: the
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
            if current is not None and _text(current) != pool:
                raise errors.PoolConflict(
                    f"{sku} is stocked in pool {_text(current)}", sku=sku, pool=_text(current)
                )
            limit: str | int = "" if keep_limit else (max_per_customer or 0)
            args: list[str | int] = [sku, total, limit, entry or "", "1" if existing else "0"]
            reply = await self._run(pool, "set_stock", args)
            if _text(reply[0]) == "missing":
                raise self.lost(sku)
            await self.client.sadd(self.keys.pools, pool)
        self._stocks(sku, pool)
        self.sold_out.forget([sku])
        self.reads.forget()  # also what was read while the pool was being listed
        if _text(reply[0]) == "below_committed":
            raise errors.StockBelowCommitted(
                f"stock of {sku} cannot go below reserved + sold",
                sku=sku,
                reserved=int(reply[1]),
                sold=int(reply[2]),
            )
        return _stock_level(sku, pool, reply[1:5])

    async def restore(
        self,
        sku: str,
        *,
        total: int,
        sold: int,
        pool: str = DEFAULT_POOL,
        max_per_customer: int | None = None,
        entry: str | None = None,
    ) -> tuple[StockLevel | None, StockLevel]:
        """Rebuild a SKU's counters from the durable record (reconcile): before and after.

        `total` and `sold` are taken as given; `reserved` is recounted from the live holds.
        The durable catalog decides the SKU's pool (and `entry`, as in `set_stock`).
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
        self._stocks(sku, pool)
        self.sold_out.forget([sku])
        args: list[str | int] = [sku, total, sold, max_per_customer or 0, entry or ""]
        reply = await self._run(pool, "restore", args)
        before = None if int(reply[0]) < 0 else _stock_level(sku, pool, reply[0:4])
        return before, _stock_level(sku, pool, reply[4:8])

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

    async def settle_paid(
        self, reservation_id: str, *, items: CartInput, customer_id: str | None = None
    ) -> str:
        """Reconcile: MongoDB has a paid order for this reservation; make its record committed
        (counters untouched: `restore` sets them next). "settled" if the record changed,
        "unchanged" if it was committed already, "oversold" if its payment was refused for good
        (the order sells nothing: its refund is on the way), "unknown" for an id not ours."""
        cart = encode_cart(normalize_cart(items))
        try:
            reply, _ = await self._one(
                reservation_id, "settle_paid", [self.retention_ms, cart, customer_id or ""]
            )
        except errors.NotFound:
            return "unknown"  # not a reservation id of this service
        return _text(reply[0])

    async def stock(
        self, skus: Sequence[str] | None = None, *, pool: str | None = None
    ) -> list[StockLevel]:
        """Counters of the given SKUs (of `pool`, or looked up), or of every SKU of `pool`."""
        return [listed.level for listed in await self.listing(skus, pool=pool)]

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
            return _listed(name, await self._run(name, "snapshot", members))
        by_pool: dict[str, list[str]] = {}
        for sku in skus:
            by_pool.setdefault(await self.pool_of(sku), []).append(sku)
        found: dict[str, Listed] = {}
        for name, members in by_pool.items():
            reply = await self._run(name, "snapshot", members)
            found.update((listed.level.sku, listed) for listed in _listed(name, reply))
        return [found[sku] for sku in skus if sku in found]

    async def product_json(self, sku: str) -> bytes | None:
        """The SKU's product view as JSON text, assembled by Redis from its counters and
        catalog entry (one call); None when Redis lacks either (UnknownSku: no pool)."""
        # The hot read: a SKU this process has seen is not looked up (nor checked) again.
        pool = self._pools.get(sku) or await self.pool_of(sku)
        reply = await self._run(pool, "product", (sku, pool))
        return None if reply is None else bytes(reply)

    async def keep_entry(self, sku: str, pool: str, entry: str) -> None:
        """Store a SKU's catalog entry beside its counters unless one is there: a reader that
        fell back to MongoDB fills it, and never overwrites a newer one written by a PUT."""
        async with storage_errors():
            await self.client.hsetnx(
                self.keys.pool(check_name(pool, "pool")).stock,
                f"{check_name(sku, 'sku')}:product",
                entry,
            )

    async def stock_level(self, sku: str) -> StockLevel:
        levels = await self.stock([sku])
        if not levels:
            raise errors.UnknownSku(f"unknown SKU {sku}", sku=sku)
        return levels[0]

    async def pool_of(self, sku: str) -> str:
        """The pool a SKU is stocked in (UnknownSku if none)."""
        check_name(sku, "sku")
        pool = self._pools.get(sku)
        if pool is None:
            async with storage_errors():
                found = await self.client.hget(self.keys.sku_pools, sku)
            pool = self._pools[sku] = _text(found) if found else await self._unknown(sku)
        return pool

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
                return _text(found)
        raise errors.UnknownSku(f"unknown SKU {sku}", sku=sku)

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

    async def expired_holds(self, pool: str) -> int:
        """How many holds of a pool have lapsed so far (a counter kept by the scripts)."""
        async with storage_errors():
            value = await self.client.hget(
                self.keys.pool(check_name(pool, "pool")).stock, ":expired"
            )
        return int(value or 0)

    async def pools(self, max_age: float = 0.0) -> list[str]:
        """Every pool that stocks something; with `max_age`, as read at most that long ago."""
        now = time.monotonic()
        read_at, names = self._pool_list
        # An empty answer is not kept: it means Redis is empty or being rebuilt.
        if max_age > 0 and names and now - read_at <= max_age:
            return names
        async with storage_errors():
            members = await self.client.smembers(self.keys.pools)
        names = sorted(_text(member) for member in members)
        self._pool_list = (now, names)
        return names

    def _stocks(self, sku: str, pool: str) -> None:
        """This process now knows the SKU's pool (and that the pool stocks something)."""
        self._pools[sku] = pool
        read_at, names = self._pool_list
        if pool not in names:
            self._pool_list = (read_at, sorted([*names, pool]))

    # -- holds -------------------------------------------------------------------------

    async def reserve(
        self,
        items: CartInput,
        *,
        customer_id: str | None = None,
        reservation_id: str | None = None,
        hold_seconds: float | None = None,
        consult_memory: bool = True,
    ) -> ReserveOutcome:
        """Hold every line of the cart, or none. Idempotent by reservation id.

        A cart with no reservation id is first refused from the sold-out memory when it knows
        a line sold out; `consult_memory=False` for a caller that asked it already for this
        request (asking twice would take the one re-check a lapsed memory lets through)."""
        lines = normalize_cart(items)
        customer = check_customer(customer_id)
        hold_ms = self.hold_ms if hold_seconds is None else int(hold_seconds * 1000)
        if hold_ms < 1:
            raise errors.InvalidRequest("hold_seconds must be positive", field="hold_seconds")
        pool = await self.cart_pool(lines)
        fresh = reservation_id is None
        if reservation_id is None:
            remembered = self.sold_out.refusal(lines) if consult_memory else None
            if remembered is not None:
                return remembered
            reservation_id = new_reservation_id(pool)
        elif pool_of_reservation(reservation_id) != pool:
            raise errors.MixedPools("the reservation id names another pool than the cart")
        cart = encode_cart(lines)
        args: list[str | int | bytes] = [
            reservation_id,
            self._hold_arg if hold_seconds is None else hold_ms,
            self._retention_arg,
            customer or "",
            cart,
            b"1" if fresh else b"0",
            self._reserve_tail,
            self._cap_arg,
        ]
        reply = await self._run(pool, "reserve", args, reservation_id)
        outcome = _text(reply[0])
        if outcome == "held":
            # A new hold is what was asked: the script answers only its times.
            held = Reservation(
                id=reservation_id,
                pool=pool,
                status=ReservationStatus.HELD,
                items=lines,
                customer_id=customer,
                expires_at=from_epoch_ms(int(reply[1])),
                created_at=from_epoch_ms(int(reply[2])),
                committed_late=False,
            )
            return Held(held, created=True)
        if outcome == "existing":
            return Held(_reservation(reservation_id, pool, reply), created=False)
        if outcome == "insufficient":
            refusal = OutOfStock(_text(reply[1]), int(reply[2]), int(reply[3]))
            self.sold_out.remember(refusal)
            return refusal
        if outcome == "customer_limit":
            return OverCustomerLimit(_text(reply[1]), int(reply[2]), int(reply[3]))
        if outcome == "customer_required":
            return CustomerRequired(_text(reply[1]))
        if outcome == "hold_cap":
            return OverHoldCap(int(reply[1]), int(reply[2]))
        if outcome == "unknown_sku":
            # The SKU had a pool and now has no counters: Redis lost them (a rebuild may even
            # have put them back since). The service answers 503 and rebuilds; the client's
            # retry is served. Without recovery, the SKU is reported unknown.
            self._pools.clear()
            if self.on_lost is not None:
                raise self.lost(_text(reply[1]))
            raise errors.UnknownSku(f"unknown SKU {_text(reply[1])}", sku=_text(reply[1]))
        raise errors.InvalidRequest(f"refused by the reserve script: {_text(reply[1])}")

    async def release(self, reservation_id: str) -> ReleaseOutcome:
        """Give a live hold back. Idempotent; refused once the reservation is committed."""
        reply, pool = await self._one(reservation_id, "release", [])
        outcome = _text(reply[0])
        reservation = _reservation(reservation_id, pool, reply)
        if outcome == "released":
            self.sold_out.forget(line.sku for line in reservation.items)
        if outcome == "already_committed":
            return ReleaseRefused(reservation)
        return Released(reservation, changed=outcome == "released")

    async def commit(
        self,
        reservation_id: str,
        *,
        items: CartInput | None = None,
        customer_id: str | None = None,
    ) -> CommitOutcome:
        """Payment confirmed: sell the held units, or take the late-payment path.

        `items` is the paid cart (from the Checkout Session's metadata), used only when Redis
        no longer has the reservation at all.
        """
        fallback = "" if items is None else encode_cart(normalize_cart(items))
        customer = check_customer(customer_id) or ""
        args: list[str | int] = [self.retention_ms, fallback, customer]
        reply, pool = await self._one(reservation_id, "commit", args)
        outcome = _text(reply[0])
        if outcome == "oversold":
            return Oversold(reservation_id, _text(reply[1]), int(reply[2]), int(reply[3]))
        if outcome == "unknown_stock":
            raise self.lost(_text(reply[1]))
        reservation = _reservation(reservation_id, pool, reply)
        if outcome == "committed_late":
            return CommittedLate(reservation)
        if outcome == "already_committed" and reservation.committed_late:
            return CommittedLate(reservation)
        return Committed(reservation, repeated=outcome == "already_committed")

    async def extend(self, reservation_id: str, *, hold_seconds: float) -> ExtendOutcome:
        """Held -> awaiting_payment, the hold lasting at least `hold_seconds` from now."""
        if not hold_seconds > 0:
            raise errors.InvalidRequest("hold_seconds must be positive", field="hold_seconds")
        args = [int(hold_seconds * 1000), self.retention_ms]
        reply, pool = await self._one(reservation_id, "extend", args)
        reservation = _reservation(reservation_id, pool, reply)
        if _text(reply[0]) == "extended":
            return Extended(reservation)
        return NotExtended(reservation)

    async def restock(self, reservation_id: str) -> Reservation:
        """A refunded, committed reservation's units go back on sale (once)."""
        reply, pool = await self._one(reservation_id, "restock", [self.retention_ms])
        reservation = _reservation(reservation_id, pool, reply)
        self.sold_out.forget(line.sku for line in reservation.items)
        return reservation

    async def get(self, reservation_id: str) -> Reservation:
        """The reservation as it stands now; a lapsed hold reads as expired."""
        reply, pool = await self._one(reservation_id, "lookup", [])
        return _reservation(reservation_id, pool, reply)

    async def reclaim(self, pool: str, *, batches: int = 1000) -> int:
        """Give back every lapsed hold of a pool (the sweeper's pass); returns how many."""
        check_name(pool, "pool")
        reclaimed = 0
        for _ in range(batches):
            done, waiting = await self._run(pool, "reclaim", [])
            reclaimed += int(done)
            if int(waiting) == 0:
                break
        return reclaimed

    # -- plumbing ----------------------------------------------------------------------

    async def cart_pool(self, lines: Sequence[CartLine]) -> str:
        """The one pool every line of a cart is stocked in (MixedPools otherwise)."""
        cached = self._pools
        if len(lines) == 1 and (known := cached.get(lines[0].sku)):
            return known  # the usual cart: one line, its pool known
        pools = {line.sku: cached.get(line.sku) or await self.pool_of(line.sku) for line in lines}
        distinct = sorted(set(pools.values()))
        if len(distinct) > 1:
            raise errors.MixedPools(
                "a cart can only hold SKUs of one pool", pools=distinct, skus=pools
            )
        return distinct[0]

    async def _one(
        self, reservation_id: str, script: str, args: Sequence[str | int | bytes]
    ) -> tuple[list[Any], str]:
        pool = pool_of_reservation(reservation_id)
        reply = await self._run(pool, script, [reservation_id, *args], reservation_id)
        outcome = _text(reply[0])
        if outcome == "not_found":
            raise errors.NotFound("no such reservation", reservation_id=reservation_id)
        if outcome == "fenced":
            raise errors.StorageUnavailable(
                "the pool is being reconciled: retry in a moment", backend="redis", pool=pool
            )
        return reply, pool

    async def _run(
        self,
        pool: str,
        script: str,
        args: Sequence[str | int | bytes],
        reservation_id: str | None = None,
    ) -> Any:
        keys = self._pool_keys.get(pool)
        if keys is None:
            keys = self.keys.pool(pool)
            # Remember only pools that stock something: a reservation id from a client can
            # name any pool, and this cache must not grow with them.
            if pool in self._pools.values():
                self._pool_keys[pool] = keys
        key_list: Sequence[str] = keys.shared
        if script not in READ_SCRIPTS:
            self.reads.forget()
        if reservation_id is not None:
            key_list = (*key_list, keys.record(reservation_id))
            if script in FENCED_SCRIPTS:
                key_list = (*key_list, keys.fence)
        try:
            reply = await self.scripts.run(script, key_list, [self._batch_arg, *args])
        except RedisError as exc:
            raise storage_unavailable(exc) from exc
        if isinstance(reply, list) and len(reply) == 2 and _text(reply[0]) == "bad_request":
            # An argument the script cannot use (it touched nothing): the checks above let
            # nothing like it through, so this is a caller's mistake, said as such.
            raise errors.InvalidRequest(
                f"refused by the {script} script: {_text(reply[1])}", argument=_text(reply[1])
            )
        return reply


def _reservation(reservation_id: str, pool: str, reply: Sequence[Any]) -> Reservation:
    _, status, items, customer, expires_at, created_at, late = reply
    return Reservation(
        id=reservation_id,
        pool=pool,
        status=ReservationStatus(_text(status)),
        items=decode_cart(_text(items)),
        customer_id=_text(customer) or None,
        expires_at=from_epoch_ms(int(expires_at)),
        created_at=from_epoch_ms(int(created_at)),
        committed_late=_text(late) == "1",
    )


def _stock_level(sku: str, pool: str, counters: Sequence[Any]) -> StockLevel:
    total, reserved, sold, limit = (int(value) for value in counters)
    return StockLevel(sku, pool, total, reserved, sold, limit or None)


def _listed(pool: str, reply: Sequence[Any]) -> list[Listed]:
    """The snapshot script's flat reply: sku, total, reserved, sold, limit, entry per SKU."""
    found = []
    for i in range(0, len(reply), 6):
        if int(reply[i + 1]) >= 0:
            entry = reply[i + 5]
            found.append(
                Listed(
                    _stock_level(_text(reply[i]), pool, reply[i + 1 : i + 5]),
                    None if entry is None else _text(entry),
                )
            )
    return found
