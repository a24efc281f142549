"""Redis connections that pack commands with hiredis (C) instead of redis-py's Python packer.

redis-py's asyncio connections pack every command in Python, one `bytes.join` per argument: a
reserve (an FCALL of 16 arguments) took about 17 µs of the client's time to pack, against
about 3 µs with `hiredis.pack_command`, which redis-py's synchronous client already uses when
hiredis is installed (as it is here: redis[hiredis]). These classes are redis-py's own, with
that one method replaced; `connection_class(url)` picks the one for a URL's scheme (redis://,
rediss://, unix://), so TLS and sockets keep working.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.exceptions import DataError


class HiredisPacking:
    """pack_command by hiredis, as redis-py's HiredisRespSerializer does for its sync client."""

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
