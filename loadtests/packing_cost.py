"""What reservation/stores/packing.py saves the client per Redis call, against redis-py's own
asyncio connection: bench_http's note beside its `reserve_redis_py_packing` case.

The HTTP case compares whole servers under wrk, where a few percent drown in the noise of a
busy machine; this compares the client's own CPU time (time.process_time, so other processes
do not count) per call of the reserve's shape (an EVAL of 16 arguments, as FCALL reserve
sends), 32 calls in flight, the two connection classes alternating round after round, each
class's median kept.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection, Connection

from reservation.stores.packing import PackedConnection

# The reserve's shape: a script call with 3 keys and a cart of two lines (no key is written).
ARGS = (
    "EVAL", "return 1", 3, "{p}:a", "{p}:b", "{p}:c", "1", "2", "3",
    "sku-1", "1", "sku-2", "2", "cus_123", "600000", "x" * 22,
)  # fmt: skip
IN_FLIGHT = 32


@dataclass(frozen=True)
class PackingCost:
    packed_us: float  # client CPU µs per call through packing.py
    redis_py_us: float  # through redis-py's own connection
    rounds: int
    calls: int

    def note(self) -> str:
        saved = 1 - self.packed_us / self.redis_py_us
        return (
            f"client CPU per script call (the reserve's 16 arguments, {IN_FLIGHT} in flight,"
            f" median of {self.rounds} alternating rounds of {self.calls:,} calls):"
            f" packing.py {self.packed_us:.1f} µs, redis-py's own connection"
            f" {self.redis_py_us:.1f} µs ({saved:.0%} saved)"
        )


async def _round(url: str, connection_class: type[AbstractConnection], calls: int) -> float:
    pool = ConnectionPool.from_url(
        url, connection_class=connection_class, max_connections=IN_FLIGHT, socket_timeout=10
    )
    client = Redis(connection_pool=pool)
    try:

        async def caller() -> None:
            for _ in range(calls // IN_FLIGHT):
                await client.execute_command(*ARGS)  # type: ignore[no-untyped-call]

        await asyncio.gather(*(caller() for _ in range(IN_FLIGHT)))  # connections opened
        started = time.process_time()
        await asyncio.gather(*(caller() for _ in range(IN_FLIGHT)))
        return (time.process_time() - started) / calls * 1e6
    finally:
        await client.aclose()
        await pool.aclose()  # a pool given to the client is not closed with it


async def packing_cost(url: str, rounds: int = 5, calls: int = 20_000) -> PackingCost:
    packed: list[float] = []
    plain: list[float] = []
    for _ in range(rounds):
        packed.append(await _round(url, PackedConnection, calls))
        plain.append(await _round(url, Connection, calls))
    return PackingCost(statistics.median(packed), statistics.median(plain), rounds, calls)
