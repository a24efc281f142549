"""What a benchmark run leaves in the shared stores, removed at its end."""

from __future__ import annotations

from typing import Any

import pymongo
from redis.asyncio import Redis


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
