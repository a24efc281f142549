"""Redis lost its counters (restarted empty, flushed, failed over to an empty replica): the
service notices and rebuilds them from MongoDB by itself, with no operator step.

How a loss is noticed: the rebuild leaves a marker key (`KeySpace.built`) beside the counters,
and an empty Redis has none. Every process checks for it every `rebuild_check_seconds` (the
watch task), and at once whenever a request finds a SKU or a reservation's counters missing
(the inventory's `on_lost` hook). Until the rebuild is done, an empty Redis is fenced by its
own emptiness: a reserve finds no counters, a payment finds no stock (both answer 503
`storage_unavailable`, and Stripe delivers the payment again), and a PUT of a product that
exists in MongoDB refuses to start its counters from zero.

The rebuild is `reconcile` of the SKUs Redis is missing: under each pool's fence (no payment
may move `sold` meanwhile), `total` from the catalog and `sold` from paid orders; the holds
Redis lost are gone, so their units are on sale again, and a session of a lost hold that then
pays takes the late-payment path (committed if units are free, else refunded once). The
waiting lists come back from MongoDB's joins in the same call as each SKU's counters, so the
units go to the line first (operations/waitlist_rebuild.py). One
process rebuilds at a time (a lock key in Redis); the others wait for the marker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from domain.errors import ReservationError, StorageUnavailable
from persistence.orders import OrderRepository
from persistence.products import ProductRepository
from reservation.core.inventory import Inventory
from reservation.core.redis_errors import storage_unavailable
from reservation.operations.background import every
from reservation.operations.reconcile import reconcile, sold_statuses
from reservation.operations.waitlist_rebuild import WaitlistRecords
from reservation.settings import Settings

logger = logging.getLogger("reservation.recovery")
# The longest one rebuild may hold the lock (a process killed mid-rebuild frees it then).
LOCK_SECONDS = 60.0


class Recovery:
    def __init__(
        self,
        settings: Settings,
        inventory: Inventory,
        products: ProductRepository,
        orders: OrderRepository,
        waitlists: WaitlistRecords | None = None,
    ) -> None:
        self.settings = settings
        self.inventory = inventory
        self.products = products
        self.orders = orders
        self.waitlists = waitlists
        self._running: asyncio.Task[int] | None = None
        self.rebuilds = 0  # rebuilds this process ran that restored something

    async def lost(self) -> bool:
        """Whether Redis lacks the marker a rebuild leaves: it lost (or never had) counters."""
        return await self.inventory.pools.counters_lost()

    async def rebuild(self) -> int:
        """Restore every catalog SKU Redis is missing; returns how many. One at a time per
        process (callers share the run in progress) and across processes (a lock key)."""
        # A caller that gives up waiting must not cancel the rebuild the others share.
        return await asyncio.shield(self._start())

    def notice_loss(self) -> None:
        """A request found counters missing: start a rebuild if none is running (no wait)."""
        self._start().add_done_callback(_log_failure)

    async def ensure(self) -> int:
        """Rebuild if Redis lost its counters; returns how many SKUs were restored."""
        return await self.rebuild() if await self.lost() else 0

    def _start(self) -> asyncio.Task[int]:
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._rebuild(), name="redis-rebuild")
        return self._running

    async def _rebuild(self) -> int:
        # redis-py's lock: a token of this process, released only by it (or lapsing).
        lock = self.inventory.client.lock(
            self.inventory.keys.rebuild_lock,
            timeout=LOCK_SECONDS,
            blocking=False,
            raise_on_release_error=False,
        )
        try:
            taken = await lock.acquire()
        except RedisError as exc:
            raise storage_unavailable(exc) from exc
        if not taken:
            await self._wait_for_other()
            return 0
        try:
            restored = await reconcile(
                self.inventory,
                self.products,
                self.orders,
                only_missing=True,
                sold_statuses=sold_statuses(self.settings),
                waitlists=self.waitlists,
            )
            await self.inventory.pools.mark_built()
        finally:
            with contextlib.suppress(RedisError):  # else the lock lapses by itself
                await lock.release()
        if restored:
            self.rebuilds += 1
            logger.warning(
                "Redis had lost counters: %d SKUs rebuilt from MongoDB",
                len(restored),
                extra={"skus": sorted(diff.sku for diff in restored)},
            )
        return len(restored)

    async def _wait_for_other(self) -> None:
        """Another process is rebuilding: wait (bounded) for its marker."""
        deadline = asyncio.get_running_loop().time() + LOCK_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            if not await self.lost():
                return
            await asyncio.sleep(0.05)
        raise StorageUnavailable("Redis counters are being rebuilt: retry", backend="redis")


def _log_failure(task: asyncio.Task[int]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if isinstance(exc, ReservationError):
        logger.warning("rebuilding Redis counters failed, retried soon: %s", exc.message)
    elif exc is not None:
        logger.error("rebuilding Redis counters failed: %s", type(exc).__name__, exc_info=exc)


async def watch(recovery: Recovery, interval_seconds: float) -> None:
    """The in-app watch task: check for a lost Redis every interval and rebuild, until
    cancelled. Redis or MongoDB down is logged and tried again at the next tick."""

    async def step() -> None:
        await recovery.ensure()

    await every(interval_seconds, step, logger=logger, what="recovery check")
