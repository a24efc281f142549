"""Commands packed by hiredis (reservation/packing.py) are the commands redis-py would send."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

from harness import servers
from reservation.stores.packing import (
    PackedConnection,
    PackedSSLConnection,
    PackedUnixConnection,
    connection_class,
)
from tests.conftest import REDIS_URL

ARGUMENTS: list[tuple[Any, ...]] = [
    ("SET", "k", "v"),
    ("CONFIG GET", "appendonly"),  # a subcommand in the command's name is sent apart
    (b"CLIENT SETNAME", b"packing-test"),
    ("FCALL", "f_1", 2, "{p}:a", b"{p}:b", 64, 1.5, "é|x", memoryview(b"mv"), bytearray(b"ba")),
    ("SET", "k", b"x" * 100_000),  # larger than redis-py's buffer cut-off
]


@pytest.mark.parametrize("args", ARGUMENTS)
def test_the_same_bytes_as_redis_py(args: tuple[Any, ...]) -> None:
    ours = b"".join(PackedConnection().pack_command(*args))
    # A bytearray or memoryview is sent as its bytes (redis-py 8 packs it so; 6 refuses it).
    plain = [bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args]
    theirs = b"".join(bytes(part) for part in Connection().pack_command(*plain))
    assert ours == theirs


@pytest.mark.parametrize("value", [None, True, ["x"]])
def test_what_redis_py_refuses_is_refused(value: object) -> None:
    with pytest.raises(DataError):
        PackedConnection().pack_command("SET", "k", value)


def test_the_class_follows_the_url_scheme() -> None:
    assert connection_class("redis://127.0.0.1:6379/0") is PackedConnection
    assert connection_class("rediss://127.0.0.1:6380/0") is PackedSSLConnection
    assert connection_class("unix:///run/redis.sock") is PackedUnixConnection
    assert issubclass(PackedSSLConnection, SSLConnection)
    assert issubclass(PackedUnixConnection, UnixDomainSocketConnection)


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    redis = Redis.from_url(REDIS_URL, connection_class=connection_class(REDIS_URL))
    try:
        yield redis
    finally:
        await redis.delete("packing-test:k", "packing-test:n")
        await redis.aclose()


async def test_a_real_server_understands_them(client: Redis) -> None:
    assert await client.set("packing-test:k", "é" * 10_000)
    assert await client.get("packing-test:k") == ("é" * 10_000).encode()
    assert await client.incrbyfloat("packing-test:n", 1.5) == 1.5
    assert (await client.config_get("appendonly")).keys() == {"appendonly"}
    assert await client.eval("return ARGV[1] .. ARGV[2]", 0, 7, b"!") == b"7!"


async def test_a_write_that_cannot_finish_times_out_and_closes(tmp_path: Path) -> None:
    """A Redis that stops reading (its process stopped): the send is bounded by the socket
    timeout, as redis-py's own (TimeoutError "Timeout writing to socket"), and the connection
    is closed."""
    if servers.REDIS_SERVER is None:
        pytest.skip("redis-server binary not found")
    server = servers.RedisServer(tmp_path)
    server.start()
    assert server.process is not None
    connection = PackedConnection(host="127.0.0.1", port=server.port, socket_timeout=0.5)
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


async def test_bench_http_measures_both_connection_classes() -> None:
    """bench_http's note: the same calls through packing.py and through redis-py's own."""
    from loadtests.packing_cost import packing_cost

    cost = await packing_cost(REDIS_URL, rounds=1, calls=320)
    assert cost.packed_us > 0
    assert cost.redis_py_us > 0
    assert "packing.py" in cost.note()
    assert "redis-py's own connection" in cost.note()
