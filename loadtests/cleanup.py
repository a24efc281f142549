"""What a benchmark run leaves in the shared stores, removed at its end."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pymongo
from redis.asyncio import Redis


@contextlib.asynccontextmanager
async def redis_for_run(url: str, prefix: str, **options: Any) -> AsyncIterator[Redis]:
    """A client of the Redis at `url` for one run whose keys all start with `prefix:`; when the
    block ends those keys are deleted and the client closed."""
    client = Redis.from_url(url, **options)
    try:
        yield client
    finally:
        try:
            await delete_matching(client, f"{prefix}:*")
        finally:
            await client.aclose()


async def delete_matching(client: Redis, pattern: str) -> int:
    """UNLINK every key matching a SCAN pattern, in batches; returns how many."""
    batch: list[bytes] = []
    deleted = 0
    async for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += await client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += await client.unlink(*batch)
    return deleted


def drop_database(uri: str, name: str) -> None:
    """Drop one MongoDB database (a run's own)."""
    mongo: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
    try:
        mongo.drop_database(name)
    finally:
        mongo.close()
