"""`reservation serve` on redis-py's own asyncio connections: its packing in Python and its
send through `asyncio.wait_for`, instead of reservation/stores/packing.py's hiredis packing and
`asyncio.timeout`. bench_http's `reserve_redis_py_packing` case runs it beside `reserve`, so
each run says whether the copy of redis-py's send path still pays for itself (issue 27).

    python -m loadtests.unpacked_serve serve --port 8000   # one worker: the patch is in-process

Only with one worker: several workers are started afresh by uvicorn and would not see it.
"""

from __future__ import annotations

from redis.asyncio.connection import AbstractConnection, Connection, parse_url

import reservation.services
from reservation.cli import main


def redis_py_connection_class(url: str) -> type[AbstractConnection]:
    """The class redis-py itself picks for the URL's scheme."""
    found: type[AbstractConnection] = parse_url(url).get("connection_class", Connection)
    return found


if __name__ == "__main__":
    setattr(reservation.services, "connection_class", redis_py_connection_class)  # noqa: B010
    main()
