"""Redis clients whose connections are a bounded pool that queues.

A process keeps at most `RESERVATION_REDIS_POOL_SIZE` connections to Redis (to each node of a
cluster), however many requests it works on: a command that finds every connection busy waits
its turn (first come, first served) for up to `WAIT_SECONDS`, then fails as a redis-py
`ConnectionError` ("No connection available."), which the service answers 503
`storage_unavailable`. A crowd of 3,000 connections is thus served through a few dozen Redis
connections, instead of opening a thousand of them (each one more client for Redis to poll
and a handshake of several commands) and failing past that.

A `ConnectionQueue` (a count of free connections and a queue of waiters) stands in front of
`execute_command`, the one method every command, script call (FCALL, FUNCTION LOAD) and lock
goes through; the pool underneath never has to refuse. redis-py offers a pool that waits
(`BlockingConnectionPool`), but not for a cluster (`RedisCluster` raises `MaxConnectionsError`
when a node's connections are all in use), and its wait (a condition, a lock and a timeout per
command) cost about 25 µs more CPU per command than this queue when 64 commands shared 16
connections. Pipelines and pub/sub would bypass the queue; the service uses neither.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError

from reservation.stores.cluster import Cluster

# How long a command waits for a free connection before it fails (then: 503).
WAIT_SECONDS = 5.0


class ConnectionQueue:
    """At most `size` commands at once; the rest wait their turn, first come first served, up
    to `wait_seconds` each.

    A waiter is a future in a queue. Its deadline is kept beside it, and one timer, set for the
    oldest waiter's deadline, fails the waiters whose wait ran out. Waiters join in deadline
    order, so the oldest is always first. An `asyncio.Semaphore` with an `asyncio.timeout` per
    waiter did the same, but at 3,000 connections nearly every command waits: that meant a
    timer, a Timeout and several `get_running_loop` calls per command, each of them a `getpid`
    system call on Python 3.11.
    """

    __slots__ = ("_free", "_timer", "_waiting", "wait_seconds")

    def __init__(self, size: int, wait_seconds: float = WAIT_SECONDS) -> None:
        if size < 1:
            raise ValueError("a Redis pool has at least 1 connection")
        self.wait_seconds = wait_seconds
        self._free = size  # never above 0 while someone waits
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    async def enter(self) -> None:
        if self._free:
            self._free -= 1  # a free connection: no wait, no timer
            return
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        deadline = loop.time() + self.wait_seconds
        self._waiting.append((deadline, turn))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire, loop)
        try:
            await turn
        except asyncio.CancelledError:
            # Cancelled once its turn had come: the connection goes to the next waiter.
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self.leave()
            raise

    def leave(self) -> None:
        waiting = self._waiting
        while waiting:
            _, turn = waiting.popleft()
            if not turn.done():  # one that gave up (cancelled) is passed over
                turn.set_result(None)
                return
        self._free += 1

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the waiters whose deadline has passed; set the timer for the next one."""
        self._timer = None
        now = loop.time()
        waiting = self._waiting
        while waiting and (waiting[0][0] <= now or waiting[0][1].done()):
            _, turn = waiting.popleft()
            if not turn.done():
                turn.set_exception(ConnectionError("No connection available."))
        if waiting:
            self._timer = loop.call_at(waiting[0][0], self._expire, loop)


class QueuedRedis(Redis):
    """A Redis client whose commands wait for one of its pool's `max_connections`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection_queue = ConnectionQueue(self.connection_pool.max_connections)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        queue = self.connection_queue
        await queue.enter()
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        finally:
            queue.leave()


class QueuedCluster(Cluster):
    """A Redis Cluster client whose commands wait for one of `pool_size` connections.

    Each command holds one connection of one node at a time, so no node is asked for more
    than `pool_size`; each node may open one more, for the topology refresh redis-py runs
    (one at a time) after a MOVED or a lost node."""

    def __init__(self, *args: Any, pool_size: int, **kwargs: Any) -> None:
        kwargs["max_connections"] = pool_size + 1
        super().__init__(*args, **kwargs)
        self.connection_queue = ConnectionQueue(pool_size)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        queue = self.connection_queue
        await queue.enter()
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            queue.leave()
