"""The durable outbox of the shop's webhooks: every offer made or lapsed, moved here from Redis,
kept until the shop took it (2xx), keyed by its event id: moving an entry twice is "already
have it"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.waitlist_events import OutboxEntry, shop_event
from persistence.mongo import (
    Database,
    Document,
    as_utc,
    find_event,
    insert_new,
    storage_errors,
    utc_now,
)
from persistence.revisions import Write, read_modify_replace, revised

PENDING = "pending"
DELIVERED = "delivered"
MAX_ERROR = 200
# The order events happened in: Redis TIME, then the pool and its own counter (two pools'
# events in one millisecond are ordered by pool name; a pool's by its seq).
ORDER = [("at_ms", 1), ("pool", 1), ("seq", 1)]


@dataclass(frozen=True, slots=True)
class ShopEvent:
    """An event waiting for the shop: its body, whose it is, and its tries so far."""

    event_id: str
    body: dict[str, Any]
    customer_id: str
    at_ms: int
    attempts: int
    next_attempt_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    pending: int
    delivered: int
    failing: int  # pending, and at least one try failed
    oldest_pending_ms: int | None  # when the oldest pending event happened (Redis TIME, ms)


class ShopEventOutbox:
    """The `shop_events` collection: the event's body, order key (at ms, pool, seq), customer,
    state (pending, delivered), attempts, next attempt time, last error and delivery time."""

    def __init__(self, db: Database) -> None:
        self.collection = db["shop_events"]

    async def add(self, entry: OutboxEntry) -> bool:
        """Store an entry's event: True if new, False if it was already here."""
        now = utc_now()
        document = {
            "event_id": entry.event_id,
            "type": entry.event_type,
            "body": shop_event(entry),
            "pool": entry.pool,
            "seq": entry.seq,
            "at_ms": entry.at_ms,
            "customer_id": entry.customer_id,
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": None,
            "created_at": now,
            "delivered_at": None,
        }
        return await insert_new(self.collection, revised(document))

    async def due(self, now: datetime, limit: int) -> list[ShopEvent]:
        """Up to `limit` events to send now, at most one per customer: each customer's oldest
        pending event, if its next try is due. A customer's later events wait behind it."""
        found: list[ShopEvent] = []
        seen: set[str] = set()
        async with storage_errors():
            cursor = self.collection.find({"state": PENDING}, {"_id": False}).sort(ORDER)
            async for document in cursor:
                customer = document["customer_id"]
                if customer in seen:
                    continue
                seen.add(customer)
                event = _event(document)
                if event.next_attempt_at <= now:
                    found.append(event)
                    if len(found) >= limit:
                        break
        return found

    async def delivered(self, event_id: str) -> None:
        """Note that the shop took the event (2xx)."""
        at = utc_now()

        def change(document: Document | None) -> Write[None]:
            if document is None or document["state"] == DELIVERED:
                return Write(None, None)
            attempts = document["attempts"] + 1
            fields = {"state": DELIVERED, "delivered_at": at, "attempts": attempts}
            return Write({**document, **fields}, None)

        await read_modify_replace(self.collection, {"event_id": event_id}, change)

    async def failed(self, event_id: str, error: str, next_attempt_at: datetime) -> None:
        """Note a failed try (`error`: the status code or the exception's class) and when the
        next one is due."""

        def change(document: Document | None) -> Write[None]:
            if document is None or document["state"] == DELIVERED:
                return Write(None, None)
            fields = {
                "attempts": document["attempts"] + 1,
                "last_error": error[:MAX_ERROR],
                "next_attempt_at": next_attempt_at,
            }
            return Write({**document, **fields}, None)

        await read_modify_replace(self.collection, {"event_id": event_id}, change)

    async def lapsed_offers(self, skus: set[str]) -> dict[tuple[str, str], int]:
        """(sku, customer) -> when their latest offer of one of `skus` lapsed (ms), from the
        events moved here (a rebuild of the waiting lists leaves those joins out)."""
        lapsed: dict[tuple[str, str], int] = {}
        async with storage_errors():
            cursor = self.collection.find({"type": "waitlist.offer_lapsed"}, {"_id": False})
            async for document in cursor:
                sku = document["body"]["data"]["sku"]
                if sku in skus:
                    key = (sku, document["customer_id"])
                    lapsed[key] = max(lapsed.get(key, 0), document["at_ms"])
        return lapsed

    async def pending(self) -> int:
        async with storage_errors():
            return await self.collection.count_documents({"state": PENDING})

    async def counts(self) -> OutboxCounts:
        """How many events wait, were delivered, are failing; when the oldest waiting happened."""
        count = self.collection.count_documents
        async with storage_errors():
            pending = await count({"state": PENDING})
            delivered = await count({"state": DELIVERED})
            failing = await count({"state": PENDING, "attempts": {"$gt": 0}})
            oldest = await self.collection.find_one({"state": PENDING}, sort=ORDER)
        return OutboxCounts(pending, delivered, failing, oldest["at_ms"] if oldest else None)

    async def get(self, event_id: str) -> dict[str, Any] | None:
        """The stored event (without MongoDB's _id and revision), or None."""
        return await find_event(
            self.collection, event_id, ("next_attempt_at", "created_at", "delivered_at")
        )


def _event(document: Document) -> ShopEvent:
    return ShopEvent(
        event_id=document["event_id"],
        body=document["body"],
        customer_id=document["customer_id"],
        at_ms=document["at_ms"],
        attempts=document["attempts"],
        next_attempt_at=as_utc(document["next_attempt_at"]),
    )
