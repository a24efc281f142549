"""Redis clients whose connections are a bounded pool that queues.

A process keeps at most `RESERVATION_REDIS_POOL_SIZE` connections to Redis (to each node of a
cluster), however many requests it works on: a command that finds every connection busy waits
in line (first come, first served) for up to `WAIT_SECONDS`, then fails as a redis-py
`ConnectionError` ("No connection available."), which the service answers 503
`storage_unavailable`. A crowd of 3,000 connections is thus served through a few dozen Redis
connections, instead of opening a thousand of them (each one more client for Redis to poll
and a handshake of several commands) and failing past that.

The line is an `asyncio.Semaphore` of the pool's size in front of `execute_command`, the one
method every command, script call (FCALL, FUNCTION LOAD) and lock goes through; the pool
underneath never has to refuse. redis-py offers a pool that waits (`BlockingConnectionPool`),
but not for a cluster (`RedisCluster` raises `MaxConnectionsError` when a node's connections
are all in use), and its wait (a condition, a lock and a timeout per command) cost about
25 µs more CPU per command than this line when 64 commands shared 16 connections. Pipelines
and pub/sub would bypass the line; the service uses neither.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError

from reservation.cluster import Cluster

# How long a command waits for a free connection before it fails (then: 503).
WAIT_SECONDS = 5.0


class Line:
    """At most `size` commands at once; the rest wait their turn, up to `wait_seconds` each."""

    __slots__ = ("semaphore", "size", "wait_seconds")

    def __init__(self, size: int, wait_seconds: float = WAIT_SECONDS) -> None:
        if size < 1:
            raise ValueError("a Redis pool has at least 1 connection")
        self.size = size
        self.semaphore = asyncio.Semaphore(size)
        self.wait_seconds = wait_seconds

    async def enter(self) -> None:
        semaphore = self.semaphore
        if not semaphore.locked():
            await semaphore.acquire()  # a free connection: no wait, no timer
            return
        try:
            async with asyncio.timeout(self.wait_seconds):
                await semaphore.acquire()
        except TimeoutError:
            raise ConnectionError("No connection available.") from None

    def leave(self) -> None:
        self.semaphore.release()


class QueuedRedis(Redis):
    """A Redis client whose commands wait for one of its pool's `max_connections`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = Line(self.connection_pool.max_connections)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        line = self.line
        await line.enter()
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        finally:
            line.leave()


class QueuedCluster(Cluster):
    """A Redis Cluster client whose commands wait for one of `pool_size` connections.

    Each command holds one connection of one node at a time, so no node is asked for more
    than `pool_size`; each node may open one more, for the topology refresh redis-py runs
    (one at a time) after a MOVED or a lost node."""

    def __init__(self, *args: Any, pool_size: int, **kwargs: Any) -> None:
        kwargs["max_connections"] = pool_size + 1
        super().__init__(*args, **kwargs)
        self.line = Line(pool_size)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        line = self.line
        await line.enter()
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            line.leave()
