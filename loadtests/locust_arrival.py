"""When a spike had arrived: the moment Locust had every user of the run's peak running,
written next to its CSVs as `<--csv prefix>_arrival.json` (`{"users", "seconds"}`, seconds
after the test started) by the master (or the only) Locust process.

Locust's history CSV counts users as its workers report them, every 3 s; the master's
`spawning_complete` event comes once every worker has said it spawned its share, so the
spike search (loadtests/spike_room.py) can tell a spike that arrived in 10 s from one that
Locust could only start in 15."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from locust.env import Environment
from locust.runners import WorkerRunner

STARTED: dict[str, Any] = {}


def test_started(environment: Environment, **_: Any) -> None:
    """A test_start listener: the moment the run began (and its environment)."""
    STARTED.update(at=time.monotonic(), environment=environment)


def spawned(user_count: int, **_: Any) -> None:
    """A spawning_complete listener (fired with the count alone): at the first time the peak
    is running, write when."""
    if "at" not in STARTED:
        return
    environment: Environment = STARTED["environment"]
    parsed = environment.parsed_options
    if isinstance(environment.runner, WorkerRunner) or parsed is None:
        return
    prefix = getattr(parsed, "csv_prefix", None)
    if not prefix or user_count < int(parsed.num_users or 0):
        return
    if not STARTED.get("written"):  # the first time only, over any file of an earlier run
        seconds = time.monotonic() - STARTED["at"]
        found = {"users": user_count, "seconds": round(seconds, 2)}
        Path(f"{prefix}_arrival.json").write_text(json.dumps(found) + "\n")
        STARTED["written"] = True
