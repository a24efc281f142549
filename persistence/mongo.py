"""The MongoDB connection, its indexes, and the one place driver errors are translated.

Writes use whole-document inserts and replaces only, never update operators (nx-27017, the
embedded server of the demo and the tests, mishandles `$set` of a datetime and `$push`):
concurrent writers of a document go through the one compare-and-set loop of
persistence/revisions.py, and the unique indexes below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from domain.errors import StorageUnavailable

Document = dict[str, Any]
Database = AsyncDatabase[Document]

SERVER_SELECTION_TIMEOUT_MS = 3000
CONNECT_TIMEOUT_MS = 3000
SOCKET_TIMEOUT_MS = 10000

INDEXES: dict[str, list[IndexModel]] = {
    "products": [IndexModel([("sku", ASCENDING)], unique=True, name="sku_unique")],
    "orders": [
        IndexModel(
            [("checkout_session_id", ASCENDING)], unique=True, name="checkout_session_id_unique"
        ),
        IndexModel([("reservation_id", ASCENDING)], unique=True, name="reservation_id_unique"),
        IndexModel([("status", ASCENDING)], name="status"),
        IndexModel([("payment_intent", ASCENDING)], name="payment_intent"),
    ],
    "pending_refunds": [
        IndexModel([("payment_intent", ASCENDING)], unique=True, name="payment_intent_unique")
    ],
    # Refunds Stripe refused for good (persistence/refunds.py): the sweeper reads the due ones.
    "failed_refunds": [
        IndexModel(
            [("checkout_session_id", ASCENDING)], unique=True, name="checkout_session_id_unique"
        ),
        IndexModel([("state", ASCENDING), ("next_attempt_at", ASCENDING)], name="state_due"),
    ],
    "checkout_sessions": [
        IndexModel([("reservation_id", ASCENDING)], unique=True, name="reservation_id_unique"),
        IndexModel([("session_id", ASCENDING)], unique=True, name="session_id_unique"),
        IndexModel([("status", ASCENDING)], name="status"),
    ],
    "checkout_attempts": [
        IndexModel([("reservation_id", ASCENDING)], unique=True, name="reservation_id_unique"),
        IndexModel([("created_at", ASCENDING)], name="created_at"),
    ],
    "stripe_events": [
        IndexModel([("event_id", ASCENDING)], unique=True, name="event_id_unique"),
        # The operations page reads the last events received.
        IndexModel([("received_at", ASCENDING)], name="received_at"),
    ],
    "shop_events": [
        IndexModel([("event_id", ASCENDING)], unique=True, name="event_id_unique"),
        # The delivery's query: the pending events in the order they happened.
        IndexModel(
            [("state", ASCENDING), ("at_ms", ASCENDING), ("pool", ASCENDING), ("seq", ASCENDING)],
            name="state_order",
        ),
    ],
    # One document per join, by its `_id` (persistence/waitlist.py); a rebuild reads a SKU's.
    "waitlist_joins": [IndexModel([("sku", ASCENDING)], name="sku")],
}


def connect(uri: str, database: str) -> tuple[AsyncMongoClient[Document], Database]:
    """A client (close it with `await client.close()`) and the named database."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
        connectTimeoutMS=CONNECT_TIMEOUT_MS,
        socketTimeoutMS=SOCKET_TIMEOUT_MS,
        appname="stripe-reservation",
    )
    return client, client.get_database(database)


@asynccontextmanager
async def storage_errors() -> AsyncIterator[None]:
    """MongoDB failures leave the persistence layer as StorageUnavailable (503).

    Repositories catch DuplicateKeyError inside this block where a duplicate means
    "already have it".
    """
    try:
        yield
    except PyMongoError as exc:
        raise StorageUnavailable("MongoDB did not answer", backend="mongodb") from exc


async def ensure_indexes(db: Database) -> None:
    """Create the unique indexes the repositories rely on (idempotent)."""
    async with storage_errors():
        for collection, indexes in INDEXES.items():
            await db[collection].create_indexes(indexes)


async def ping(db: Database) -> bool:
    """True when MongoDB answers (readiness)."""
    try:
        reply = await db.command("ping")
    except PyMongoError:
        return False
    return bool(reply.get("ok"))


# A filter matching a field that is null (or missing), the same on MongoDB and nx-27017:
# nx-27017 reads a bare `{field: None}` as matching nothing, though it applies `$eq` to null.
IS_NULL: Document = {"$eq": None}
NOT_NULL: Document = {"$ne": None}


def utc_now() -> datetime:
    """Now, as MongoDB will store it (see `stored_time`)."""
    return stored_time(datetime.now(UTC))


def stored_time(value: datetime) -> datetime:
    """UTC cut to milliseconds, what MongoDB keeps, so a written value reads back equal.

    A naive datetime is taken as UTC, as PyMongo does.
    """
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def as_utc(value: datetime) -> datetime:
    """A datetime read from MongoDB, in datetime.UTC."""
    return value.astimezone(UTC)


async def find_event(collection: Any, event_id: str, times: tuple[str, ...]) -> Document | None:
    """The document of an event by its `event_id` (without MongoDB's _id and its revision), its
    `times` in datetime.UTC; None when there is none."""
    async with storage_errors():
        document: Document | None = await collection.find_one(
            {"event_id": event_id}, {"_id": False}
        )
    if document is None:
        return None
    document.pop("revision", None)
    for name in times:
        if isinstance(document.get(name), datetime):
            document[name] = as_utc(document[name])
    return document


async def insert_new(collection: Any, document: Document) -> bool:
    """Insert a document: True if new, False if one with its unique key was there already (a
    duplicate is "already have it")."""
    async with storage_errors():
        try:
            await collection.insert_one(document)
        except DuplicateKeyError:
            return False
    return True
