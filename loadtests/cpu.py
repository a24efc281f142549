"""CPU time over a benchmark window: the server's processes, the load generator, Redis,
nx-27017 and the whole machine, read from /proc, getrusage and Redis' INFO."""

from __future__ import annotations

import contextlib
import math
import os
import resource
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class Cpu:
    """CPU time over one window, in percent of one core."""

    server: float
    wrk: float
    redis: float
    mongo: float  # nan: an outside MongoDB (MONGODB_URI), not measured
    machine: float  # every process on the machine (at most 100 % per core)
    steal: float  # time the hypervisor gave the cores to someone else

    def text(self) -> str:
        shares = (self.server, self.wrk, self.redis, self.mongo, self.machine)
        return " / ".join("n/a" if math.isnan(x) else f"{x:.0f}%" for x in shares)

    @property
    def others(self) -> float:
        """What the machine spent beyond the server, wrk, Redis and nx-27017."""
        mongo = 0.0 if math.isnan(self.mongo) else self.mongo
        return self.machine - self.server - self.wrk - self.redis - mongo


Snapshot = tuple[float, float, float, float, float, float]


def usage(before: Snapshot, after: Snapshot, wall_seconds: float) -> Cpu:
    """The CPU of a window between two snapshots, in percent of one core."""
    return Cpu(*(100 * (b - a) / wall_seconds for a, b in zip(before, after, strict=True)))


async def snapshot(redis: Redis, server_pids: Sequence[int], mongo_pid: int | None) -> Snapshot:
    """CPU seconds so far: the server, wrk (reaped children), Redis, nx-27017, all, steal."""
    mongo = cpu_seconds([mongo_pid]) if mongo_pid else math.nan
    redis_seconds = await redis_cpu_seconds(redis)
    busy, steal = machine_cpu_seconds()
    return cpu_seconds(server_pids), children_cpu_seconds(), redis_seconds, mongo, busy, steal


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (uvicorn's workers)."""
    found = [pid]
    for parent in found:
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU of this process's reaped children (wrk runs), user + system."""
    rusage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return rusage.ru_utime + rusage.ru_stime


async def redis_cpu_seconds(client: Redis) -> float:
    stats = await client.info("cpu")
    return float(stats["used_cpu_user"]) + float(stats["used_cpu_sys"])


def machine_cpu_seconds() -> tuple[float, float]:
    """Busy and stolen CPU seconds of the whole machine since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / tick, steal / tick
