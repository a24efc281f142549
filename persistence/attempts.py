"""Checkout attempts: the write-ahead record of a Checkout Session being made at Stripe.

A checkout writes its attempt (the exact parameters and the Idempotency-Key) before it asks
Stripe, and deletes it once the session is recorded in `checkout_sessions` (or Stripe refused
it for good). An attempt still here later belongs to a process that died in between, or to a
call Stripe never answered: the sweeper sends the same request under the same key again, so
Stripe hands back the session it made (or makes it now), and records it like any other.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from persistence.mongo import Database, Document, as_utc, storage_errors, stored_time, utc_now


@dataclass(frozen=True, slots=True)
class CheckoutAttempt:
    reservation_id: str
    idempotency_key: str
    params: dict[str, Any]  # exactly what was sent to Stripe, so a resend is a replay
    # When the session, if Stripe made it, stops being payable: past this, nothing to recover.
    session_expires_at: datetime
    created_at: datetime | None = None


def _attempt(document: Document) -> CheckoutAttempt:
    return CheckoutAttempt(
        reservation_id=document["reservation_id"],
        idempotency_key=document["idempotency_key"],
        params=document["params"],
        session_expires_at=as_utc(document["session_expires_at"]),
        created_at=as_utc(document["created_at"]),
    )


class CheckoutAttempts:
    """The `checkout_attempts` collection, unique by reservation id."""

    def __init__(self, db: Database) -> None:
        self.collection = db["checkout_attempts"]

    async def begin(self, attempt: CheckoutAttempt) -> bool:
        """Record the attempt before Stripe is asked; one already there (a retried or
        concurrent checkout of the same reservation, same key) stands. True if this call
        recorded it."""
        document = {
            "reservation_id": attempt.reservation_id,
            "idempotency_key": attempt.idempotency_key,
            "params": attempt.params,
            "session_expires_at": stored_time(attempt.session_expires_at),
            "created_at": utc_now(),
        }
        async with storage_errors():
            try:
                await self.collection.insert_one(document)
            except DuplicateKeyError:
                return False
        return True

    async def finish(self, reservation_id: str) -> None:
        """The session is recorded, or none was made: nothing left to recover."""
        async with storage_errors():
            await self.collection.delete_one({"reservation_id": reservation_id})

    async def older_than(
        self, before: datetime, limit: int = 100
    ) -> builtins.list[CheckoutAttempt]:
        """Attempts begun before `before`, oldest first: their callers are gone or gave up."""
        async with storage_errors():
            cursor = self.collection.find({"created_at": {"$lt": stored_time(before)}})
            documents = await cursor.sort("created_at", 1).limit(limit).to_list()
        return [_attempt(document) for document in documents]
