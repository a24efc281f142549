"""The service's Redis clients (reservation/stores/connection_queue.py): a crowd larger than
the pool waits for a connection instead of failing, and the connections stay at
RESERVATION_REDIS_POOL_SIZE, on one Redis and on each node of a cluster."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit

import psutil
import pytest
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.exceptions import ConnectionError, MaxConnectionsError

from reservation.services import redis_client
from reservation.settings import Settings
from reservation.stores.connection_queue import ConnectionQueue, QueuedCluster, QueuedRedis
from tests.conftest import REDIS_URL

CROWD = 300


def connections_to(port: int) -> int:
    """This process's open TCP connections to a local port."""
    return sum(
        1
        for conn in psutil.Process().net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == port and conn.status == psutil.CONN_ESTABLISHED
    )


async def test_a_crowd_waits_for_the_pool_s_connections_and_opens_no_more() -> None:
    port = urlsplit(REDIS_URL).port or 6379
    key = f"test-pool-{uuid.uuid4().hex[:12]}"
    before = connections_to(port)
    client = redis_client(Settings(redis_url=REDIS_URL, redis_pool_size=3))
    assert isinstance(client, QueuedRedis)
    try:
        # 300 commands at once over 3 connections: they queue, none fails, none is lost.
        answers = await asyncio.gather(*(client.incr(key) for _ in range(CROWD)))
        assert sorted(answers) == list(range(1, CROWD + 1))
        # The pool keeps what it opened: what is open now is the most it ever had at once.
        assert connections_to(port) - before == 3
        await asyncio.gather(*(client.get(key) for _ in range(CROWD)))
        assert connections_to(port) - before == 3
    finally:
        await client.delete(key)
        await client.aclose()


async def test_a_command_that_waits_too_long_for_a_connection_fails_as_redis_unavailable() -> None:
    client = redis_client(Settings(redis_url=REDIS_URL, redis_pool_size=1))
    assert isinstance(client, QueuedRedis)
    client.connection_queue = ConnectionQueue(1, wait_seconds=0.05)
    key = f"test-pool-{uuid.uuid4().hex[:12]}"
    unblock = Redis.from_url(REDIS_URL)
    try:
        # The one connection blocks on an empty list until the test pushes to it (a BLPOP
        # with a timeout of a second could return before the next command, on a busy machine) ...
        blocked = asyncio.ensure_future(client.blpop([key], timeout=0))
        await asyncio.sleep(0.1)
        # ... so the next command waits its bound, and fails as a Redis error (a 503).
        with pytest.raises(ConnectionError, match="No connection available"):
            await client.get(key)
        await unblock.rpush(key, "go")
        popped = await blocked
        assert popped is not None
        assert list(popped) == [key.encode(), b"go"]
        # The connection is free again: the next command is served.
        assert await client.get(key) is None
    finally:
        await unblock.delete(key)
        await unblock.aclose()
        await client.aclose()


async def test_on_a_cluster_a_crowd_waits_instead_of_max_connections_error(
    cluster_ports: list[int],
) -> None:
    url = f"redis://127.0.0.1:{cluster_ports[0]}"
    key = f"test-pool-{uuid.uuid4().hex[:12]}"
    # redis-py's own cluster client refuses a crowd larger than a node's connections ...
    plain = RedisCluster(
        startup_nodes=[ClusterNode("127.0.0.1", port) for port in cluster_ports],
        max_connections=2,
    )
    try:
        outcomes = await asyncio.gather(
            *(plain.incr(key) for _ in range(CROWD)), return_exceptions=True
        )
        assert any(isinstance(outcome, MaxConnectionsError) for outcome in outcomes)
    finally:
        await plain.aclose()
    before = {port: connections_to(port) for port in cluster_ports}
    # ... the service's waits its turn.
    client = redis_client(Settings(redis_url=url, redis_cluster=True, redis_pool_size=2))
    assert isinstance(client, QueuedCluster)
    try:
        start = int(await client.get(key) or 0)
        answers = await asyncio.gather(*(client.incr(key) for _ in range(CROWD)))
        assert sorted(answers) == list(range(start + 1, start + CROWD + 1))
        opened = {port: connections_to(port) - before[port] for port in cluster_ports}
        # 2 per node for the commands, and one for the topology the client reads.
        assert max(opened.values()) <= 3
        assert sum(opened.values()) >= 2
    finally:
        await client.delete(key)
        await client.aclose()


async def test_the_queue_serves_in_order_and_a_waiter_that_gives_up_holds_no_place() -> None:
    queue = ConnectionQueue(1, wait_seconds=5)
    await queue.enter()  # the one connection is taken
    served: list[str] = []

    async def wait(name: str) -> None:
        await queue.enter()
        served.append(name)

    first, quitter, last = (asyncio.ensure_future(wait(n)) for n in ("first", "quitter", "last"))
    await asyncio.sleep(0)
    quitter.cancel()
    await asyncio.sleep(0)
    queue.leave()  # to the first in line
    await first
    assert served == ["first"]
    queue.leave()  # the quitter gave up: to the last
    await last
    assert served == ["first", "last"]
    assert quitter.cancelled()
    queue.leave()
    await queue.enter()  # free again: taken without waiting
    queue.leave()


async def test_a_waiter_cancelled_after_its_turn_came_passes_the_connection_on() -> None:
    queue = ConnectionQueue(1, wait_seconds=5)
    await queue.enter()
    taker = asyncio.ensure_future(queue.enter())
    behind = asyncio.ensure_future(queue.enter())
    await asyncio.sleep(0)
    queue.leave()  # the taker's turn comes ...
    taker.cancel()  # ... and it is cancelled before it runs again
    await asyncio.gather(taker, return_exceptions=True)
    await asyncio.wait_for(behind, 1)  # the connection went on to the next in line


async def test_waiters_past_their_deadline_fail_in_order_and_the_rest_keep_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The loop's clock (the queue's deadlines and timers) is the test's: on the wall clock, a
    # busy machine that stalls this process 0.15 s lets both deadlines pass before the first
    # timer runs, and fails both waiters at once.
    loop = asyncio.get_running_loop()
    now = [loop.time()]
    monkeypatch.setattr(loop, "time", lambda: now[0])
    queue = ConnectionQueue(1, wait_seconds=0.3)
    await queue.enter()
    early = asyncio.ensure_future(queue.enter())
    await asyncio.sleep(0)  # in line, until now + 0.3
    now[0] += 0.15
    late = asyncio.ensure_future(queue.enter())
    await asyncio.sleep(0)  # in line, until now + 0.3
    now[0] += 0.16  # (not 0.15: the sum of floats could fall short of the first deadline)
    # The first waiter's 0.3 s ran out while the second still has about half of its own.
    with pytest.raises(ConnectionError, match="No connection available"):
        await early
    assert not late.done()
    queue.leave()
    await late
    queue.leave()
