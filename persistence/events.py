"""Every Stripe event received, keyed by its id: a duplicate delivery is "already have it"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from persistence.mongo import Database, as_utc, storage_errors, utc_now


class StripeEventRepository:
    """The `stripe_events` collection: type, payload, received and processed times, outcome."""

    def __init__(self, db: Database) -> None:
        self.collection = db["stripe_events"]

    async def record(self, event_id: str, event_type: str, payload: dict[str, Any]) -> bool:
        """Store a received event: True if it is new, False if it was already recorded.

        False says nothing about whether it was processed: a delivery that died mid-way is
        recorded but not processed (see `get`), and its redelivery must still be handled.
        """
        document = {
            "event_id": event_id,
            "type": event_type,
            "payload": payload,
            "received_at": utc_now(),
            "processed_at": None,
            "outcome": None,
        }
        async with storage_errors():
            try:
                await self.collection.insert_one(document)
            except DuplicateKeyError:
                return False
        return True

    async def mark_processed(self, event_id: str, outcome: str) -> None:
        """Note that the event's handler ran, and what it did (no-op for an unknown event)."""
        async with storage_errors():
            document = await self.collection.find_one({"event_id": event_id})
            if document is None:
                return
            document.update(processed_at=utc_now(), outcome=outcome)
            await self.collection.replace_one({"event_id": event_id}, document)

    async def get(self, event_id: str) -> dict[str, Any] | None:
        """The stored event (without MongoDB's _id), or None."""
        async with storage_errors():
            document = await self.collection.find_one({"event_id": event_id}, {"_id": False})
        if document is None:
            return None
        for name in ("received_at", "processed_at"):
            if isinstance(document.get(name), datetime):
                document[name] = as_utc(document[name])
        return document
