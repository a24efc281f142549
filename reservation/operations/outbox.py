"""The shop is told: offers made and lapsed go from each pool's Redis list to MongoDB (the
relay), then from MongoDB to the shop's webhook URL (the delivery), signed, retried with
backoff until the shop answers 2xx: at least once, and in the order they happened per customer.

Every process of the service runs this loop; the lease in Redis lets one at a time work (a
process SIGKILLed mid-step stops renewing it, and another takes over once it lapses). The
relay moves an entry to MongoDB before it drops it from Redis, so a crash between the two moves
it again: the event id is the same, and the second insert is "already have it".
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from redis.backoff import EqualJitterBackoff

from domain.errors import ReservationError
from domain.waitlist_events import MalformedOutboxEntry, signature_header
from persistence.outbox import ShopEvent, ShopEventOutbox
from reservation.core.outbox import OutboxLease, OutboxList
from reservation.core.pools import PoolDirectory
from reservation.lua.outbox_entry import decode
from reservation.metrics import Metrics
from reservation.operations.background import every
from reservation.settings import Settings

logger = logging.getLogger("reservation.outbox")

RELAY_BATCH = 100  # entries read from one pool's list at a time
RELAY_MOST = 2000  # entries moved from one pool in one step, so a step stays short
DELIVERY_BATCH = 32  # events sent at once (each another customer's)
SIGNATURE_HEADER = "Reservation-Signature"
# A failed try is sent again after a delay drawn from [d/2, d], d = 2^tries seconds (2 s, 4 s,
# 8 s, ...), up to an hour: the first retries come quick, a shop down for long is asked hourly.
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 3600.0


def retry_delay(attempts: int) -> float:
    """Seconds until the next try of an event whose `attempts` tries (1 or more) failed."""
    return float(
        EqualJitterBackoff(cap=RETRY_CAP_SECONDS, base=RETRY_BASE_SECONDS).compute(attempts)
    )


def event_body(event: ShopEvent) -> bytes:
    """The bytes sent (and signed): the event as compact JSON."""
    return json.dumps(event.body, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class StepReport:
    relayed: int = 0
    delivered: int = 0
    failed: int = 0


class ShopOutbox:
    """The relay and the delivery, and the lease that keeps them to one process."""

    def __init__(
        self,
        *,
        settings: Settings,
        entries: OutboxList,
        lease: OutboxLease,
        events: ShopEventOutbox,
        pools: PoolDirectory,
        metrics: Metrics,
        http: httpx.AsyncClient,
    ) -> None:
        self.settings = settings
        self.entries = entries
        self.lease = lease
        self.events = events
        self.pools = pools
        self.metrics = metrics
        self.http = http

    async def step(self) -> StepReport | None:
        """One pass, if this process holds (or takes) the lease; None if another holds it."""
        if not await self.lease.hold():
            return None
        relayed = await self.relay()
        delivered = failed = 0
        if self.settings.shop_webhook_url and await self.lease.hold():
            delivered, failed = await self.deliver_due()
        self.metrics.outbox_pending.set(await self.events.pending())
        return StepReport(relayed, delivered, failed)

    async def relay(self) -> int:
        """Move every pool's new entries to MongoDB; how many were new there."""
        moved = 0
        for pool in await self.pools.stocked():
            moved += await self.relay_pool(pool)
        return moved

    async def relay_pool(self, pool: str) -> int:
        moved = 0
        for _ in range(RELAY_MOST // RELAY_BATCH):
            raw = await self.entries.oldest(pool, RELAY_BATCH)
            if not raw:
                break
            moved += await self.store(raw)
            if not await self.entries.drop_oldest(pool, raw):
                break  # another relay took them: the lease lapsed under this one
        return moved

    async def store(self, raw: list[bytes]) -> int:
        """Insert the entries' events (in order); how many were new."""
        new = 0
        for text in raw:
            try:
                entry = decode(text)
            except MalformedOutboxEntry as exc:
                # A script wrote what no shop can be told: kept in the log, not in the way.
                logger.error("outbox entry dropped: %s", exc)
                self.metrics.outbox_relayed.labels("malformed").inc()
                continue
            if await self.events.add(entry):
                new += 1
                self.metrics.outbox_relayed.labels("moved").inc()
            else:
                self.metrics.outbox_relayed.labels("duplicate").inc()
        return new

    async def deliver_due(self, now: datetime | None = None) -> tuple[int, int]:
        """Send every customer's oldest pending event whose try is due (at `now`, default
        the clock's); (delivered, failed)."""
        due = await self.events.due(now or datetime.now(UTC), DELIVERY_BATCH)
        outcomes = await asyncio.gather(*(self.deliver(event) for event in due))
        delivered = sum(outcomes)
        return delivered, len(outcomes) - delivered

    async def deliver(self, event: ShopEvent) -> bool:
        """POST one event to the shop; note the outcome. True when the shop took it (2xx)."""
        # Settings.check refuses a URL without a secret; "" signs nothing a shop would accept.
        url, secret = self.settings.shop_webhook_url or "", self.settings.shop_webhook_secret or ""
        body = event_body(event)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(secret, int(time.time()), body),
        }
        try:
            answer = await self.http.post(url, content=body, headers=headers)
            error = None if answer.is_success else f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        if error is None:
            await self.events.delivered(event.event_id)
            self.metrics.shop_deliveries.labels("delivered").inc()
            return True
        delay = retry_delay(event.attempts + 1)
        await self.events.failed(
            event.event_id, error, datetime.now(UTC) + timedelta(seconds=delay)
        )
        self.metrics.shop_deliveries.labels("failed").inc()
        logger.warning(
            "shop webhook not delivered: %s; next try in %.0f s",
            error,
            delay,
            extra={"event_id": event.event_id, "customer_id": event.customer_id},
        )
        return False


async def run_periodically(outbox: ShopOutbox, interval_seconds: float) -> None:
    """The in-app outbox task: one step every interval, until cancelled; the lease is given
    up on the way out, so another process takes over at once."""

    async def step() -> None:
        report = await outbox.step()
        if report is not None and (report.relayed or report.delivered):
            logger.info(
                "outbox: %d events moved to MongoDB, %d delivered, %d failed",
                report.relayed,
                report.delivered,
                report.failed,
            )

    try:
        await every(interval_seconds, step, logger=logger, what="outbox")
    finally:
        with suppress(ReservationError):
            await outbox.lease.give_up()
