"""The service's Redis connections are redis-py's own (reservation/services.py): a command that
cannot be written is bounded by the socket timeout, and the connection is closed, so a Redis
that stops reading is a 503 within RESERVATION_REDIS_TIMEOUT_SECONDS, not a request that hangs.

(Until issue 27 the service wrote through a copy of redis-py's send path, packing.py: measured
against redis-py 8.2's own on an idle machine it did not pay, docs/testing.md.)"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import TimeoutError as RedisTimeoutError

from harness import servers
from reservation.services import redis_client
from reservation.settings import Settings


async def test_the_service_connects_with_redis_py_s_own_connection_class() -> None:
    client = redis_client(Settings(redis_url="redis://127.0.0.1:6379/0"))
    try:
        assert isinstance(client, Redis)
        assert client.connection_pool.connection_class is Connection
        assert await client.ping()
    finally:
        await client.aclose()


async def test_a_write_that_cannot_finish_times_out_and_closes(tmp_path: Path) -> None:
    """A Redis that stops reading (its process stopped): the send is bounded by the socket
    timeout (TimeoutError "Timeout writing to socket") and the connection is closed."""
    if servers.REDIS_SERVER is None:
        pytest.skip("redis-server binary not found")
    server = servers.RedisServer(tmp_path)
    server.start()
    assert server.process is not None
    connection = Connection(host="127.0.0.1", port=server.port, socket_timeout=0.5)
    try:
        await connection.connect()  # type: ignore[no-untyped-call]
        os.kill(server.process.pid, signal.SIGSTOP)
        with pytest.raises(RedisTimeoutError, match="Timeout writing to socket"):
            # Far more than the socket buffers hold: the write has to wait for Redis.
            await connection.send_packed_command([b"x" * (64 << 20)], check_health=False)
        assert not connection.is_connected
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        await connection.disconnect()
        server.stop()
