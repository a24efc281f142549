"""The one compare-and-set write loop (persistence/revisions.py) under contention, on a real
server (nx-27017 unless MONGODB_URI is set): every update lands, or the writer is told."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, cast

import pytest
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.results import InsertOneResult, UpdateResult

from domain import errors
from persistence.mongo import Database, Document, utc_now
from persistence.revisions import WRITE_ATTEMPTS, Write, read_modify_replace, revised

KEY = {"name": "counter"}


async def counters(mongo_db: Database) -> AsyncCollection[Document]:
    collection = mongo_db["counters"]
    await collection.create_index([("name", ASCENDING)], unique=True)
    return collection


class Writer:
    """Adds itself to the counter document: one more, its name in the list, the time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.decisions = 0

    def change(self, current: Document | None) -> Write[str]:
        self.decisions += 1
        count = 0 if current is None else current["count"]
        writers = [] if current is None else current["writers"]
        document = {**KEY, "count": count + 1, "writers": [*writers, self.name], "at": utc_now()}
        return Write(document, self.name)

    async def write(self, collection: AsyncCollection[Document], **options: Any) -> str:
        return await read_modify_replace(collection, KEY, self.change, **options)


async def test_as_many_concurrent_writers_as_attempts_all_land(mongo_db: Database) -> None:
    collection = await counters(mongo_db)
    writers = [Writer(f"w{i}") for i in range(WRITE_ATTEMPTS)]
    # The document does not exist yet: the first round races on the insert (unique index),
    # the later ones on the revision.
    landed = await asyncio.gather(*(writer.write(collection) for writer in writers))

    assert sorted(landed) == sorted(writer.name for writer in writers)
    stored = await collection.find_one(KEY)
    assert stored is not None
    assert stored["count"] == WRITE_ATTEMPTS
    assert sorted(stored["writers"]) == sorted(landed)  # no update lost, none applied twice
    # Whole-document replaces keep types (nx-27017 turns a `$set` datetime into a string).
    assert isinstance(stored["at"], datetime)
    # The writers did race: some decided more than once, none beyond the policy.
    decisions = [writer.decisions for writer in writers]
    assert sum(decisions) > len(writers)
    assert max(decisions) <= WRITE_ATTEMPTS


async def test_more_writers_than_attempts_land_or_are_told(mongo_db: Database) -> None:
    collection = await counters(mongo_db)
    attempts = 3
    writers = [Writer(f"w{i}") for i in range(40)]
    results = await asyncio.gather(
        *(writer.write(collection, attempts=attempts) for writer in writers),
        return_exceptions=True,
    )

    landed = [result for result in results if isinstance(result, str)]
    refused = [result for result in results if not isinstance(result, str)]
    assert len(landed) + len(refused) == len(writers)
    assert landed  # every round, someone wins
    for error in refused:
        assert isinstance(error, errors.StorageUnavailable)
        assert error.details == {
            "backend": "mongodb",
            "collection": "counters",
            "attempts": attempts,
            **KEY,
        }
    stored = await collection.find_one(KEY)
    assert stored is not None
    # Exactly the writers that were answered "done" are in the document.
    assert stored["count"] == len(landed)
    assert sorted(stored["writers"]) == sorted(landed)


class AlwaysBeaten:
    """The collection, where another writer's replace lands between every read and replace."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection
        self.name = collection.name
        self.reads = 0

    async def find_one(self, key: Document) -> Document | None:
        self.reads += 1
        return await self.collection.find_one(key)

    async def insert_one(self, document: Document) -> InsertOneResult:
        return await self.collection.insert_one(document)

    async def replace_one(self, expected: Document, document: Document) -> UpdateResult:
        await self.collection.replace_one(KEY, revised({**KEY, "count": -1, "writers": []}))
        return await self.collection.replace_one(expected, document)


async def test_a_writer_beaten_every_time_gives_up_after_the_policy(mongo_db: Database) -> None:
    collection = await counters(mongo_db)
    await collection.insert_one(revised({**KEY, "count": 0, "writers": []}))
    beaten = AlwaysBeaten(collection)

    with pytest.raises(errors.StorageUnavailable) as raised:
        await Writer("w").write(cast("AsyncCollection[Document]", beaten))

    assert raised.value.status_code == 503
    assert raised.value.details["attempts"] == WRITE_ATTEMPTS
    assert beaten.reads == WRITE_ATTEMPTS
    stored = await collection.find_one(KEY)
    assert stored is not None
    assert stored["writers"] == []  # nothing half-written


async def test_nothing_to_change_writes_nothing(mongo_db: Database) -> None:
    collection = await counters(mongo_db)

    def keep(current: Document | None) -> Write[bool]:
        return Write(None, current is None)

    assert await read_modify_replace(collection, KEY, keep)
    assert await collection.count_documents({}) == 0
