"""Every Stripe event received, keyed by its id: a duplicate delivery is "already have it"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from persistence.mongo import (
    IS_NULL,
    NOT_NULL,
    Database,
    Document,
    as_utc,
    find_event,
    insert_new,
    storage_errors,
    utc_now,
)
from persistence.revisions import Write, read_modify_replace, revised

MAX_EXCEPTION = 2000


@dataclass(frozen=True, slots=True)
class EventCounts:
    received: int
    processed: int
    failed: int  # whose handler failed at least once
    failing: int  # of those, not processed since


@dataclass(frozen=True, slots=True)
class EventTimes:
    created: int | None  # the event's `created`: Stripe's clock, whole seconds
    received_at: datetime
    processed_at: datetime | None


class StripeEventRepository:
    """The `stripe_events` collection: type, payload, received and processed times, outcome,
    and the last failure of its handler (`exception`, `failed_at`), as dj-stripe keeps it."""

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
            "exception": None,
            "failed_at": None,
        }
        return await insert_new(self.collection, revised(document))

    async def mark_processed(self, event_id: str, outcome: str) -> None:
        """Note that the event's handler ran, and what it did (no-op for an unknown event).
        A failure of an earlier try stays on the record."""
        await self._note(event_id, processed_at=utc_now(), outcome=outcome)

    async def mark_failed(self, event_id: str, exception: str) -> None:
        """Note why the event's handler failed (no-op for an unknown event): it stays
        unprocessed, so Stripe's redelivery runs the handler again."""
        await self._note(event_id, exception=exception[:MAX_EXCEPTION], failed_at=utc_now())

    async def _note(self, event_id: str, **fields: object) -> None:
        def change(document: Document | None) -> Write[None]:
            return Write(None if document is None else {**document, **fields}, None)

        await read_modify_replace(self.collection, {"event_id": event_id}, change)

    async def counts(self) -> EventCounts:
        """How many events were received, processed, and failed (the operations page)."""
        count = self.collection.count_documents
        async with storage_errors():
            received = await count({})
            processed = await count({"processed_at": NOT_NULL})
            failed = await count({"failed_at": NOT_NULL})
            failing = await count({"failed_at": NOT_NULL, "processed_at": IS_NULL})
        return EventCounts(received, processed, failed, failing)

    async def recent(self, limit: int) -> list[EventTimes]:
        """When the last `limit` events were created (by Stripe), received and processed,
        newest first."""
        fields = {"_id": False, "received_at": True, "processed_at": True, "payload.created": True}
        async with storage_errors():
            cursor = self.collection.find({}, fields).sort("received_at", -1).limit(limit)
            documents = await cursor.to_list()
        found = []
        for document in documents:
            # MongoDB nests a projected path; nx-27017 answers it flat ("payload.created").
            created = (document.get("payload") or {}).get(
                "created", document.get("payload.created")
            )
            processed = document.get("processed_at")
            found.append(
                EventTimes(
                    created=created if isinstance(created, int) else None,
                    received_at=as_utc(document["received_at"]),
                    processed_at=None if processed is None else as_utc(processed),
                )
            )
        return found

    async def get(self, event_id: str) -> dict[str, Any] | None:
        """The stored event (without MongoDB's _id), or None."""
        return await find_event(
            self.collection, event_id, ("received_at", "processed_at", "failed_at")
        )
