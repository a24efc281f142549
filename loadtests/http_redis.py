"""What one window of the HTTP benchmark asked of Redis: the commands Redis processed (INFO
stats, so other clients of that Redis count too), and the connections to Redis the server's
processes held, sampled during the window (psutil, exact), beside Redis' `connected_clients`
(every client of that Redis)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil
from redis.asyncio import Redis

SAMPLE_SECONDS = 0.5


async def commands_processed(client: Redis) -> int:
    stats = await client.info("stats")
    return int(stats["total_commands_processed"])


def redis_port(url: str) -> int:
    return urlsplit(url).port or 6379


def connections_to(pids: Sequence[int], port: int) -> int:
    """Open TCP connections of these processes to `port` (the Redis they use)."""
    count = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            count += sum(
                1
                for conn in psutil.Process(pid).net_connections(kind="tcp")
                if conn.raddr and conn.raddr.port == port
            )
    return count


@dataclass
class Watch:
    """The most connections seen during the window: the server's to Redis, and Redis' clients."""

    server_connections: int = 0
    connected_clients: int = 0


@contextlib.asynccontextmanager
async def watching(client: Redis, pids: Sequence[int], port: int) -> AsyncIterator[Watch]:
    """Sample the connections every SAMPLE_SECONDS while the block runs (and once at its end)."""
    watch = Watch()

    async def sample() -> None:
        server = await asyncio.to_thread(connections_to, pids, port)
        clients = int((await client.info("clients"))["connected_clients"])
        watch.server_connections = max(watch.server_connections, server)
        watch.connected_clients = max(watch.connected_clients, clients)

    async def loop() -> None:
        while True:
            await sample()
            await asyncio.sleep(SAMPLE_SECONDS)

    task = asyncio.create_task(loop())
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sample()
