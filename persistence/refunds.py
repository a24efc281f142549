"""Refunds that arrived before their order: Stripe delivers in any order, so a `charge.refunded`
may come before the `checkout.session.completed` it refunds. It waits here, keyed by payment
intent, and the order takes it when it is recorded.

And refunds Stripe refused for good (an oversold payment's refund answered with a 4xx that no
retry of the same request changes): kept with Stripe's error until a later try, or an admin,
closes them (usecases/payment_events.py)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from persistence.mongo import Database, Document, as_utc, storage_errors, utc_now
from persistence.revisions import Write, read_modify_replace

FAILED, REFUNDED, SETTLED = "failed", "refunded", "settled"


class PendingRefunds:
    """The `pending_refunds` collection, unique by payment intent."""

    def __init__(self, db: Database) -> None:
        self.collection = db["pending_refunds"]

    async def add(self, payment_intent: str) -> None:
        async with storage_errors():
            with contextlib.suppress(DuplicateKeyError):  # already waiting
                await self.collection.insert_one(
                    {"payment_intent": payment_intent, "received_at": utc_now()}
                )

    async def exists(self, payment_intent: str) -> bool:
        async with storage_errors():
            found = await self.collection.find_one({"payment_intent": payment_intent})
        return found is not None


@dataclass(frozen=True, slots=True)
class FailedRefund:
    """A refund Stripe refused for good: Stripe's last error, and when to try again."""

    checkout_session_id: str
    payment_intent: str
    code: str | None
    message: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    next_attempt_at: datetime
    state: str  # "failed", then "refunded" or "settled"
    settled_note: str | None = None


def _failed(document: Document) -> FailedRefund:
    return FailedRefund(
        checkout_session_id=document["checkout_session_id"],
        payment_intent=document["payment_intent"],
        code=document.get("code"),
        message=document["message"],
        attempts=int(document["attempts"]),
        first_failed_at=as_utc(document["first_failed_at"]),
        last_failed_at=as_utc(document["last_failed_at"]),
        next_attempt_at=as_utc(document["next_attempt_at"]),
        state=document["state"],
        settled_note=document.get("settled_note"),
    )


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Seconds before the next try after `attempts` refusals: doubling, at most MAX_BACKOFF."""
    return timedelta(seconds=min(base_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


MAX_BACKOFF_SECONDS = 3600.0


class FailedRefunds:
    """The `failed_refunds` collection, one document per Checkout Session; every write is a
    whole-document replace (persistence/revisions.py)."""

    def __init__(self, db: Database) -> None:
        self.collection = db["failed_refunds"]

    async def refused(
        self, session_id: str, payment_intent: str, code: str | None, message: str, base: float
    ) -> FailedRefund:
        """Record one more refusal (the first creates the record): Stripe's error, and the next
        try after a doubling backoff."""
        now = utc_now()

        def change(current: Document | None) -> Write[FailedRefund]:
            attempts = 1 if current is None else int(current["attempts"]) + 1
            document: Document = {
                "checkout_session_id": session_id,
                "payment_intent": payment_intent,
                "code": code,
                "message": message,
                "attempts": attempts,
                "first_failed_at": now if current is None else current["first_failed_at"],
                "last_failed_at": now,
                "next_attempt_at": now + backoff(attempts, base),
                "state": FAILED,
                "settled_note": None,
            }
            return Write(document, _failed(document))

        key = {"checkout_session_id": session_id}
        return await read_modify_replace(self.collection, key, change)

    async def close(self, session_id: str, state: str, note: str | None = None) -> None:
        """The refund went through (`refunded`) or an admin settled it (`settled`)."""

        def change(current: Document | None) -> Write[None]:
            if current is None:
                return Write(None, None)
            kept = current.get("settled_note") if note is None else note
            return Write({**current, "state": state, "settled_note": kept}, None)

        key = {"checkout_session_id": session_id}
        await read_modify_replace(self.collection, key, change)

    async def get(self, session_id: str) -> FailedRefund | None:
        async with storage_errors():
            found = await self.collection.find_one({"checkout_session_id": session_id})
        return None if found is None else _failed(found)

    async def due(self, window_seconds: float, limit: int = 100) -> list[FailedRefund]:
        """Failed refunds whose next try is due, first refused within the retry window."""
        now = utc_now()
        query = {
            "state": FAILED,
            "next_attempt_at": {"$lte": now},
            "first_failed_at": {"$gte": now - timedelta(seconds=window_seconds)},
        }
        async with storage_errors():
            cursor = self.collection.find(query).sort("next_attempt_at", ASCENDING)
            documents = await cursor.limit(limit).to_list()
        return [_failed(document) for document in documents]

    async def failed(self, limit: int = 50) -> list[FailedRefund]:
        """The refunds still failed, oldest first (the operations page)."""
        async with storage_errors():
            cursor = self.collection.find({"state": FAILED}).sort("first_failed_at", ASCENDING)
            documents = await cursor.limit(limit).to_list()
        return [_failed(document) for document in documents]

    async def count_failed(self) -> int:
        async with storage_errors():
            return int(await self.collection.count_documents({"state": FAILED}))
