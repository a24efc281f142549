"""Checkout Sessions made for reservations: one per reservation, and whether it is still open."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pymongo.errors import DuplicateKeyError

from domain.errors import StorageUnavailable
from domain.statuses import CheckoutStatus
from persistence.mongo import Database, Document, as_utc, storage_errors, utc_now
from persistence.revisions import Write, read_modify_replace, revised


@dataclass(frozen=True, slots=True)
class Checkout:
    reservation_id: str
    session_id: str
    url: str
    expires_at: datetime
    status: CheckoutStatus = CheckoutStatus.OPEN
    created_at: datetime | None = None
    updated_at: datetime | None = None


def _document(checkout: Checkout) -> Document:
    return {
        "reservation_id": checkout.reservation_id,
        "session_id": checkout.session_id,
        "url": checkout.url,
        "expires_at": checkout.expires_at,
        "status": checkout.status.value,
        "created_at": checkout.created_at,
        "updated_at": checkout.updated_at,
    }


def _checkout(document: Document) -> Checkout:
    return Checkout(
        reservation_id=document["reservation_id"],
        session_id=document["session_id"],
        url=document["url"],
        expires_at=as_utc(document["expires_at"]),
        status=CheckoutStatus(document["status"]),
        created_at=as_utc(document["created_at"]),
        updated_at=as_utc(document["updated_at"]),
    )


class CheckoutRepository:
    """The `checkout_sessions` collection, unique by reservation id and by session id."""

    def __init__(self, db: Database) -> None:
        self.collection = db["checkout_sessions"]

    async def get_by_reservation(self, reservation_id: str) -> Checkout | None:
        async with storage_errors():
            document = await self.collection.find_one({"reservation_id": reservation_id})
        return None if document is None else _checkout(document)

    async def get(self, session_id: str) -> Checkout | None:
        async with storage_errors():
            document = await self.collection.find_one({"session_id": session_id})
        return None if document is None else _checkout(document)

    async def add(self, checkout: Checkout) -> Checkout:
        """Record a new session; if the reservation has one already, that one is returned."""
        now = utc_now()
        stored = replace(checkout, created_at=now, updated_at=now)
        async with storage_errors():
            try:
                await self.collection.insert_one(revised(_document(stored)))
            except DuplicateKeyError:
                existing = await self.get_by_reservation(checkout.reservation_id)
                if existing is None:
                    raise StorageUnavailable(
                        "checkout session recorded twice", backend="mongodb"
                    ) from None
                return existing
        return stored

    async def move(
        self, session_id: str, to: CheckoutStatus, *, only_from: tuple[CheckoutStatus, ...]
    ) -> bool:
        """Set the status if it is one of `only_from` (compare-and-set); True if moved."""

        def change(current: Checkout, now: datetime) -> Checkout | None:
            if current.status not in only_from:
                return None
            return replace(current, status=to, updated_at=now)

        return await self._update(session_id, change)

    async def claim_for_expiry(self, session_id: str, lease: timedelta) -> bool:
        """Mark an open session as being expired by this caller (compare-and-set); a claim
        older than `lease` (its sweeper died) can be taken over. True if this caller has it."""

        def change(current: Checkout, now: datetime) -> Checkout | None:
            stale = current.updated_at is not None and current.updated_at < now - lease
            if current.status is CheckoutStatus.OPEN or (
                current.status is CheckoutStatus.EXPIRING and stale
            ):
                return replace(current, status=CheckoutStatus.EXPIRING, updated_at=now)
            return None

        return await self._update(session_id, change)

    async def _update(
        self, session_id: str, change: Callable[[Checkout, datetime], Checkout | None]
    ) -> bool:
        """Replace the document with `change(current)` (compare-and-set, see
        persistence.revisions); False when there is nothing to change."""

        def write(document: Document | None) -> Write[bool]:
            changed = None if document is None else change(_checkout(document), utc_now())
            return Write(None if changed is None else _document(changed), changed is not None)

        return await read_modify_replace(self.collection, {"session_id": session_id}, write)

    async def list_open(self, limit: int = 1000) -> builtins.list[Checkout]:
        """Sessions still open (or left expiring by an interrupted sweep), oldest first."""
        statuses = [CheckoutStatus.OPEN.value, CheckoutStatus.EXPIRING.value]
        async with storage_errors():
            cursor = self.collection.find({"status": {"$in": statuses}}).sort("created_at", 1)
            documents = await cursor.limit(limit).to_list()
        return [_checkout(document) for document in documents]
