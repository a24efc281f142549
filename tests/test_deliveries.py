"""SeenDeliveries on the three backends (a Redis Cluster too): one delivery taken once."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from domain import errors
from harness import servers
from reservation.core.deliveries import MARGIN_SECONDS, SeenDeliveries
from reservation.core.keys import KeySpace
from reservation.lua.library import RedisClient


async def test_a_delivery_is_new_once(client: RedisClient, keyspace: KeySpace) -> None:
    seen = SeenDeliveries(client, keyspace)
    now = int(time.time())
    assert await seen.first(now, "a" * 64, accepted_until=now + 300)
    assert not await seen.first(now, "a" * 64, accepted_until=now + 300)
    # Another signature, or the same one at another timestamp, is another delivery.
    assert await seen.first(now, "b" * 64, accepted_until=now + 300)
    assert await seen.first(now + 1, "a" * 64, accepted_until=now + 301)


@pytest.mark.parametrize("ahead", [-300, 0, 300], ids=["oldest", "now", "furthest ahead"])
async def test_kept_until_the_tolerance_refuses_it(
    client: RedisClient, keyspace: KeySpace, ahead: int
) -> None:
    seen = SeenDeliveries(client, keyspace)
    timestamp = int(time.time()) + ahead
    # What is needed, read before and after the key is set: the time between is not the TTL's.
    needed_before = timestamp + 300 - time.time()
    assert await seen.first(timestamp, "c" * 64, accepted_until=timestamp + 300)
    kept = await client.ttl(keyspace.webhook_delivery(timestamp, "c" * 64))
    needed = timestamp + 300 - time.time()
    assert needed <= kept <= needed_before + MARGIN_SECONDS + 1


async def test_redis_not_answering_is_storage_unavailable(keyspace: KeySpace) -> None:
    client = Redis(host="127.0.0.1", port=servers.free_port(), socket_connect_timeout=1)
    with pytest.raises(errors.StorageUnavailable):
        await SeenDeliveries(client, keyspace).first(1, "d" * 64, accepted_until=301)
    await client.aclose()
