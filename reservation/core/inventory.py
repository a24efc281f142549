"""The stock core as the service opens it: one Redis client, one key space, and the parts that
share them: `holds` (reserve to restock), `stock` (administration and reads), `rooms` (the
waiting rooms), `waitlists` (the waiting lists) and `pools` (the pool directory), with the
short memories this process keeps (`sold_out`, `reads`)."""

from __future__ import annotations

from domain.rules import MAX_STOCK
from reservation.core.calls import PoolCalls
from reservation.core.holds import Holds
from reservation.core.keys import KeySpace
from reservation.core.pools import PoolDirectory
from reservation.core.readcache import ReadCache
from reservation.core.rooms import Rooms
from reservation.core.soldout import SoldOutMemory
from reservation.core.stock import Stock
from reservation.core.waitlist import Waitlists
from reservation.lua.library import RedisClient, Scripts


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
        offer_seconds: float = 600,
    ) -> None:
        if hold_seconds <= 0 or retention_seconds < 0 or reclaim_batch < 1:
            raise ValueError("hold_seconds > 0, retention_seconds >= 0, reclaim_batch >= 1")
        if not 0 <= max_holds_per_customer <= MAX_STOCK:
            raise ValueError("0 <= max_holds_per_customer <= 10^12 (0: no cap)")
        self.client = client
        self.keys = keys or KeySpace()
        self.sold_out = SoldOutMemory(sold_out_seconds)
        # Product reads (JSON answers) remembered briefly; any write of this process forgets.
        self.reads: ReadCache[bytes] = ReadCache(read_cache_seconds)
        self.pools = PoolDirectory(client, self.keys)
        self.calls = PoolCalls(Scripts.register(client), self.pools, self.reads, reclaim_batch)
        self.holds = Holds(
            self.calls,
            self.pools,
            self.sold_out,
            self.keys,
            hold_seconds=hold_seconds,
            retention_seconds=retention_seconds,
            require_customer=require_customer,
            max_holds_per_customer=max_holds_per_customer,
        )
        self.stock = Stock(client, self.keys, self.calls, self.pools, self.sold_out, self.reads)
        self.rooms = Rooms(self.calls, self.pools, self.keys)
        self.waitlists = Waitlists(
            self.calls,
            self.pools,
            offer_seconds=offer_seconds,
            retention_seconds=retention_seconds,
        )
