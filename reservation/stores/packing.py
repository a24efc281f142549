"""The service's Redis connections: redis-py's, with two costs of every command cut.

- Packing: redis-py's asyncio connections pack every command in Python, one `bytes.join` per
  argument: a reserve (an FCALL of 16 arguments) took about 17 µs of the client's time to
  pack, against about 3 µs with `hiredis.pack_command`, which redis-py's synchronous client
  already uses when hiredis is installed (as it is here: redis[hiredis]).
- Sending: with a socket timeout (the service always sets one), redis-py sends each command
  through `asyncio.wait_for`, which on Python 3.11 wraps the write in a new Task, scheduled
  through the event loop. Here the same bound is an `asyncio.timeout` around the write: no
  task, and the same error (TimeoutError "Timeout writing to socket", connection closed).

These classes are redis-py's own with those methods replaced; `connection_class(url)` picks
the one for a URL's scheme (redis://, rediss://, unix://), so TLS and sockets keep working.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

import hiredis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError


class HiredisPacking:
    """pack_command by hiredis, as redis-py's HiredisRespSerializer does for its sync client,
    and send_packed_command without a task per command."""

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        # A command name given with its subcommand ("CONFIG GET") is sent as two arguments.
        if isinstance(first, str):
            if " " in first:
                args = (*first.encode().split(), *args[1:])
        elif b" " in first:
            args = (*first.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            pass
        # hiredis takes str, int, float and bytes: a bytearray or memoryview becomes bytes.
        packed = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
        try:
            return [hiredis.pack_command(packed)]  # type: ignore[arg-type]  # any length
        except TypeError as exc:
            raise DataError(str(exc)) from exc

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        """redis-py's AbstractConnection.send_packed_command, bounded by asyncio.timeout."""
        connection = cast("AbstractConnection", self)
        if not connection.is_connected:
            await connection.connect_check_health(check_health=False)
        if check_health:
            await connection.check_health()  # type: ignore[no-untyped-call]
        try:
            if isinstance(command, str):
                command = command.encode()
            if isinstance(command, bytes):
                command = [command]
            writer = connection._writer
            assert writer is not None
            writer.writelines(command)
            if connection.socket_timeout:
                async with asyncio.timeout(connection.socket_timeout):
                    await writer.drain()
            else:
                await writer.drain()
        except TimeoutError:
            await connection.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            await connection.disconnect(nowait=True)
            code, message = ("UNKNOWN", exc.args[0]) if len(exc.args) == 1 else exc.args[:2]
            raise RedisConnectionError(f"Error {code} while writing to socket. {message}.") from exc
        except BaseException:
            # A write cut short (cancelled) leaves the stream unusable: close it.
            await connection.disconnect(nowait=True)
            raise


class PackedConnection(HiredisPacking, Connection):
    pass


class PackedSSLConnection(HiredisPacking, SSLConnection):
    pass


class PackedUnixConnection(HiredisPacking, UnixDomainSocketConnection):
    pass


PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: PackedConnection,
    SSLConnection: PackedSSLConnection,
    UnixDomainSocketConnection: PackedUnixConnection,
}


def connection_class(url: str) -> type[AbstractConnection]:
    """The packing connection class for what `url` connects to (its scheme)."""
    plain = parse_url(url).get("connection_class", Connection)
    return PACKED.get(plain, plain)
