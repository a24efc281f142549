"""The machine and the runtime a benchmark runs on: the table at the top of its report, and the
event loop it runs in."""

from __future__ import annotations

import os
import platform
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import uvloop
from redis.asyncio import Redis
from redis.utils import HIREDIS_AVAILABLE

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


async def machine_info(client: Redis) -> dict[str, str]:
    """Date, cores, CPU, Python and its event loop, the Redis server and client."""
    server = await client.info("server")
    persistence = await client.config_get("appendonly")
    return {
        "date (UTC)": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "CPU": cpu_model(),
        "Python": f"{platform.python_version()} (uvloop event loop)",
        "Redis": f"{server['redis_version']} (appendonly {persistence.get('appendonly')})",
        "redis-py": f"{redis.__version__} (hiredis parser: {HIREDIS_AVAILABLE})",
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run `main` on uvloop, the loop uvicorn[standard] runs the service on."""
    return uvloop.run(main)
