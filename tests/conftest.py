"""Backends for the core tests: real Redis, fakeredis, and a local Redis Cluster."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode

from harness import servers
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace
from reservation.lua.library import RedisClient
from reservation.stores.cluster import Cluster

# Fixture modules: MongoDB (nx-27017 or MONGODB_URI), the in-process HTTP app, and the shop as
# real processes (tests.live), a browser on it (tests.browser).
pytest_plugins = [
    "tests.mongo",
    "tests.stripe_fake",
    "tests.api",
    "tests.shop",
    "tests.server",
    "tests.live",
    "tests.browser",
]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ["redis", "fakeredis", "cluster"]
# What a test must never do to the shared Redis (FUNCTION FLUSH, FLUSHALL: every library or key
# of every test running on the machine) it does to a redis-server of its own:
# `@pytest.mark.parametrize("client", OWN_BACKENDS, indirect=True)`.
OWN_BACKENDS = ["own-redis", "fakeredis", "cluster"]

MakeInventory = Callable[..., Awaitable[Inventory]]


@pytest.fixture(scope="session")
def cluster_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    if servers.REDIS_SERVER is None:
        pytest.skip("redis-server binary not found: the Redis Cluster tests need it")
    with servers.redis_cluster(Path(tmp_path_factory.mktemp("cluster"))) as ports:
        yield ports


@pytest.fixture
def keyspace() -> KeySpace:
    """A prefix of this test's own, so tests never see each other's keys."""
    return KeySpace(f"test-{uuid.uuid4().hex[:12]}")


async def _drop_keys(client: RedisClient, keys: KeySpace) -> None:
    if isinstance(client, RedisCluster):
        for node in client.get_primaries():
            async for key in client.scan_iter(match=keys.pattern(), target_nodes=node):
                await client.delete(key)
        return
    async for key in client.scan_iter(match=keys.pattern(), count=1000):
        await client.delete(key)


@pytest.fixture(params=BACKENDS)
async def client(request: pytest.FixtureRequest, keyspace: KeySpace) -> AsyncIterator[Any]:
    """An async Redis client of each backend; the test's keys are deleted afterwards."""
    backend: RedisClient
    own: servers.RedisServer | None = None
    if request.param == "redis":
        backend = Redis.from_url(REDIS_URL, max_connections=2000)
    elif request.param == "own-redis":
        if servers.REDIS_SERVER is None:
            pytest.skip("redis-server binary not found: this test needs a Redis of its own")
        own = servers.RedisServer(request.getfixturevalue("tmp_path") / "redis")
        own.start()
        backend = Redis.from_url(own.url, max_connections=2000)
    elif request.param == "fakeredis":
        backend = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), max_connections=2000)
    else:
        ports: list[int] = request.getfixturevalue("cluster_ports")
        backend = Cluster(
            startup_nodes=[ClusterNode("127.0.0.1", port) for port in ports],
            max_connections=2000,
        )
    try:
        yield backend
    finally:
        await _drop_keys(backend, keyspace)
        await backend.aclose()
        if own is not None:
            own.stop()


@pytest.fixture
def make_inventory(client: RedisClient, keyspace: KeySpace) -> MakeInventory:
    async def make(**options: Any) -> Inventory:
        return Inventory(client, keys=keyspace, **options)

    return make


@pytest.fixture
async def inventory(make_inventory: MakeInventory) -> Inventory:
    return await make_inventory()


# Ages one hold as time would (see age_hold): its member's score and its record's expiry say
# the same time, and the pool's `:next` is dropped (unknown), so the next script looks.
AGE_HOLD_LUA = """
local member = redis.call('ZSCAN', KEYS[1], 0, 'MATCH', ARGV[1], 'COUNT', 1000000)[2][1]
if member then redis.call('ZADD', KEYS[1], 'XX', 1, member) end
local raw = redis.call('GET', KEYS[2])
if raw then
  local status, rest = string.match(raw, '^([^|]*)|[^|]*|(.*)$')
  redis.call('SET', KEYS[2], status .. '|1|' .. rest, 'KEEPTTL')
end
redis.call('HDEL', KEYS[3], ':next')
"""


def age_hold_call(keys: KeySpace, reservation_id: str) -> tuple[str, int, str, str, str, str]:
    """The EVAL arguments of age_hold (for a client of either kind)."""
    pool = keys.pool(reservation_id.rpartition(".")[0])
    record = pool.record(reservation_id)
    return AGE_HOLD_LUA, 3, pool.holds, record, pool.stock, f"{reservation_id}|*"


async def age_hold(client: RedisClient, keys: KeySpace, reservation_id: str) -> None:
    """Make a live hold lapse, as if its time had passed (no sweeper involved).

    A hold's member in the pool's sorted set starts with "<reservation id>|", its score is the
    record's expires_at, and the pool's stock hash keeps `:next`, no hold lapsing earlier
    (see _pool.lua): all three are moved back to 1 ms after the epoch.
    """
    await client.eval(*age_hold_call(keys, reservation_id))
