"""The linearizability check of a recorded history: `check(...)` -> a `Verdict` per pool.

Each pool is checked on its own (history.by_pool): carts never cross pools, so a pool's
operations touch only its own state, and a history is linearizable exactly when each pool's
part is (Herlihy and Wing's locality). A finer partition, per SKU, would not be sound: a cart
of two SKUs is one operation on both, all or nothing, and a customer's limit and hold cap tie
their SKUs together.

Answers that may be stale by design (the sold-out memory's refusals, cached product reads:
staleness.stale_window) have their invocation moved back by their window before the search; the
windows are parameters, so a run can check that a memory that never lapses is caught (a
window of the designed length) while the designed one passes.

Verdicts: `ok` (every answer explained by one order), `fail` (none explains them; the window
where the search got stuck deepest is printed), `unknown` (the pool's time budget was spent;
the deepest point reached so far is printed as a hint, marked undecided).
The history's verdict is `fail` if any pool failed, else `unknown` if any was unknown, else
`ok`.

    python -m loadtests.linearizability.checker history.jsonl initial.json [--json verdict.json]

exits 0 (ok), 1 (fail) or 2 (unknown), printing the verdict and any window. The initial
record is initial.py's (the products the recorder set up, and the hold cap).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.linearizability import history
from loadtests.linearizability import initial as initial_record
from loadtests.linearizability.explain import Window, window
from loadtests.linearizability.history import Operation, Outcome, by_pool
from loadtests.linearizability.initial import Initial
from loadtests.linearizability.model import PoolModel
from loadtests.linearizability.search import search, searched
from loadtests.linearizability.staleness import (
    DEFAULT_READ_WINDOW,
    DEFAULT_SOLDOUT_WINDOW,
    stale_window,
)

DEFAULT_BUDGET_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class PoolVerdict:
    pool: str
    verdict: str  # "ok", "fail", "unknown"
    operations: int  # in the partition, failed ones included
    searched: int  # answered, and unknown ones that may change state
    explored: int  # configurations the search cached
    seconds: float
    window: Window | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "verdict": self.verdict,
            "operations": self.operations,
            "searched": self.searched,
            "explored": self.explored,
            "seconds": round(self.seconds, 3),
            "window": None if self.window is None else self.window.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: str
    soldout_window: float
    read_window: float
    budget_seconds: float
    pools: tuple[PoolVerdict, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "soldout_window": self.soldout_window,
            "read_window": self.read_window,
            "budget_seconds": self.budget_seconds,
            "pools": [pool.to_json() for pool in self.pools],
        }

    def text(self) -> str:
        lines = [
            f"linearizability: {self.verdict} (sold-out window {self.soldout_window:.2f} s, "
            f"read window {self.read_window:.2f} s, budget {self.budget_seconds:.0f} s per pool)"
        ]
        for pool in self.pools:
            lines.append(
                f"  {pool.pool}: {pool.verdict}, {pool.operations} operations "
                f"({pool.searched} searched), {pool.explored} configurations, {pool.seconds:.2f} s"
            )
        lines += [pool.window.text() for pool in self.pools if pool.window is not None]
        return "\n".join(lines)


def check(
    operations: Iterable[Operation],
    *,
    initial: Initial,
    soldout_window: float = DEFAULT_SOLDOUT_WINDOW,
    read_window: float = DEFAULT_READ_WINDOW,
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
    workers: int = 1,
) -> Verdict:
    """Check every pool of the history from the products `initial` set up; `workers` > 1
    checks that many pools at once, each in a process of its own (pools share nothing)."""
    if soldout_window < 0 or read_window < 0 or budget_seconds <= 0 or workers < 1:
        raise ValueError("windows must be >= 0, the budget > 0 and the workers >= 1")
    known_pools = set(initial.pools())
    jobs = []
    for pool, ops in by_pool(operations):
        if pool not in known_pools:
            raise ValueError(f"pool {pool!r} has operations but no products set up")
        paid = frozenset(
            str(op.args.get("id"))
            for op in ops
            if op.kind == "pay" and op.args.get("outcome") == "paid"
        )
        model = PoolModel(initial.pool(pool), initial.hold_cap, raced_checkouts(ops), paid)
        jobs.append((model, pool, ops, soldout_window, read_window, budget_seconds))
    if workers == 1 or len(jobs) < 2:
        pools = [check_pool(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(min(workers, len(jobs))) as executor:
            pools = list(executor.map(check_pool, *zip(*jobs, strict=True)))
    verdicts = {pool.verdict for pool in pools}
    overall = "fail" if "fail" in verdicts else "unknown" if "unknown" in verdicts else "ok"
    return Verdict(overall, soldout_window, read_window, budget_seconds, tuple(pools))


def raced_checkouts(operations: Iterable[Operation]) -> frozenset[str]:
    """The reservations checked out both with a `409 reservation_not_held` and with a session:
    only there can a session recorded by the refused checkout be seen (a later checkout answers
    it; a payment needs a session someone saw), so only there is that choice searched."""
    refused, made = set(), set()
    for op in operations:
        if op.kind == "checkout" and op.outcome is Outcome.OK:
            if op.result.get("error") == "reservation_not_held":
                refused.add(str(op.args.get("id")))
            elif op.result.get("status") == 201:
                made.add(str(op.args.get("id")))
    return frozenset(refused & made)


def check_pool(
    model: PoolModel,
    pool: str,
    operations: list[Operation],
    soldout_window: float,
    read_window: float,
    budget_seconds: float,
) -> PoolVerdict:
    """One partition: the search, and the window when it fails."""
    started = time.monotonic()
    ops = searched(operations)
    windows = {op.id: stale_window(op, soldout_window, read_window) for op in ops}
    ops.sort(key=lambda op: (op.invoked - windows[op.id], op.id))
    calls = [op.invoked - windows[op.id] for op in ops]
    # The search makes millions of small objects and no reference cycles: the cyclic
    # collector would only walk its growing cache again and again (a third of the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        found = search(model, ops, calls, budget_seconds)
    finally:
        if collecting:
            gc.enable()
    # A failure's window; for a budget spent, the deepest point so far (a hint, marked so).
    shown = None if found.stuck is None else window(model, pool, found, windows)
    return PoolVerdict(
        pool,
        found.verdict,
        len(operations),
        len(ops),
        found.explored,
        time.monotonic() - started,
        shown,
    )


EXIT = {"ok": 0, "fail": 1, "unknown": 2}


def main(argv: Sequence[str] | None = None) -> int:
    """Check a recorded history (history.write) from its initial record (initial.write)."""
    parser = argparse.ArgumentParser(description="Check a recorded history for linearizability.")
    parser.add_argument("history", type=Path, help="the operations, one JSON object a line")
    parser.add_argument("initial", type=Path, help="the products set up before the run")
    parser.add_argument("--soldout-window", type=float, default=DEFAULT_SOLDOUT_WINDOW)
    parser.add_argument("--read-window", type=float, default=DEFAULT_READ_WINDOW)
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_SECONDS)
    parser.add_argument("--workers", type=int, default=1, help="pools checked at once")
    parser.add_argument("--json", type=Path, help="write the verdict here as JSON")
    options = parser.parse_args(argv)
    verdict = check(
        history.read(options.history),
        initial=initial_record.read(options.initial),
        soldout_window=options.soldout_window,
        read_window=options.read_window,
        budget_seconds=options.budget,
        workers=options.workers,
    )
    if options.json is not None:
        options.json.write_text(json.dumps(verdict.to_json(), indent=1) + "\n", "utf-8")
    print(verdict.text())
    return EXIT[verdict.verdict]


if __name__ == "__main__":
    sys.exit(main())
