"""A drill: its fault, how to inject it into a sale, which failures it makes expected, and
what its sale and stack need besides the usual."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field

from loadtests.drills.outcome import Outcome
from loadtests.drills.target import Target, Timings


@dataclass
class Drill:
    """One drill of the registry (loadtests/drills/registry.py)."""

    name: str
    fault: str
    redis_args: tuple[str, ...]
    inject: Callable[[Target], Timings]
    # Locust failures that this fault makes expected (a 503 while a store is down).
    expected_failure: Callable[[str], bool]
    # More environment for the service, more options for the simulator.
    service_env: dict[str, str] = field(default_factory=dict)
    sim_args: tuple[str, ...] = ()
    # More options for the sale, given its seconds.
    sale_args: Callable[[int], tuple[str, ...]] = lambda seconds: ()
    # Request names whose p99 with the fault must stay within BASELINE_FACTOR x the p99 of the
    # same sale without it, run first on a stack of its own (none: no such sale).
    baseline: tuple[str, ...] = ()
    # How long after the sale its last sweep waits, besides the holds' lapse.
    settle_seconds: float = 0.0
    # A drill that is not a fault in a Locust sale runs itself (given the command's arguments).
    run: Callable[[argparse.Namespace], Outcome] | None = None
