"""Runs recorded and checked: a clean run and runs under faults must be linearizable, a run
of a tree with a planted bug must not be (the checker prints the window it cannot explain).
Each run is judged against what it must give; the summary says what each gave, how many
operations were checked and how long the check took."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loadtests.linearizability import history, initial
from loadtests.linearizability.checker import Verdict, check
from loadtests.linearizability.faults import FAULTS, NO_FAULT
from loadtests.linearizability.plant import BUGS, planted
from loadtests.linearizability.recorder import RunOptions, RunResult, record

CHECK_WORKERS = 2  # the runs' two pools, each checked in a process of its own


@dataclass(frozen=True)
class Checked:
    """One run, its verdict, and whether that is the verdict it must give (`expected`)."""

    name: str
    expected: str  # "ok" (clean, faults) or "fail" (a planted bug)
    run: RunResult
    verdict: Verdict
    check_seconds: float

    @property
    def passed(self) -> bool:
        return self.verdict.verdict == self.expected

    def summary(self) -> dict[str, Any]:
        by_kind: dict[str, int] = {}
        for op in history.read(self.run.history):
            by_kind[op.kind] = by_kind.get(op.kind, 0) + 1
        return {
            "run": self.name,
            "expected": self.expected,
            "verdict": self.verdict.verdict,
            "passed": self.passed,
            "operations": self.run.operations,
            "by_kind": by_kind,
            "undelivered_payments": self.run.undelivered,
            "fault": self.run.fault,
            "record_seconds": round(self.run.seconds, 1),
            "check_seconds": round(self.check_seconds, 2),
            "history": str(self.run.history),
            "pools": [pool.to_json() for pool in self.verdict.pools],
        }


def check_files(
    history_path: Path,
    initial_path: Path,
    budget_seconds: float,
    *,
    soldout_window: float | None = None,
    read_window: float | None = None,
    workers: int = CHECK_WORKERS,
) -> tuple[Verdict, float]:
    """The checker's verdict on a written history (its windows unless given), and the seconds
    it took; `workers` pools checked at once."""
    windows = {
        name: value
        for name, value in (("soldout_window", soldout_window), ("read_window", read_window))
        if value is not None
    }
    started = time.monotonic()
    verdict = check(
        history.read(history_path),
        initial=initial.read(initial_path),
        budget_seconds=budget_seconds,
        workers=workers,
        **windows,
    )
    return verdict, time.monotonic() - started


def run_fault(name: str, options: RunOptions, budget_seconds: float) -> Checked:
    """A run with fault `name` ("none": a clean run), checked: it must be linearizable."""
    fault = NO_FAULT if name == "none" else FAULTS[name]
    run = record(replace(options, fault=fault, report_dir=options.report_dir / name))
    verdict, seconds = check_files(run.history, run.initial, budget_seconds)
    return Checked(name, "ok", run, verdict, seconds)


def run_plant(letter: str, options: RunOptions, budget_seconds: float) -> Checked:
    """A run of a copy of the tree with bug `letter` planted, checked: it must not be
    linearizable."""
    bug = BUGS[letter]
    name = f"plant-{bug.letter}-{bug.name}"
    with tempfile.TemporaryDirectory(prefix=f"lin-plant-{bug.letter}-") as temp:
        tree = planted(bug, Path(temp) / "tree")
        report_dir = options.report_dir / name
        run = record(replace(options, root=tree, report_dir=report_dir))
    verdict, seconds = check_files(run.history, run.initial, budget_seconds)
    return Checked(name, "fail", run, verdict, seconds)


def report(checked: Checked) -> str:
    """What one run gave, for the console: a line, then the checker's own text (with the
    window it could not explain, when it failed)."""
    mark = "as it must" if checked.passed else f"MUST BE {checked.expected.upper()}"
    head = (
        f"== {checked.name}: {checked.verdict.verdict} ({mark}); {checked.run.operations}"
        f" operations in {checked.run.seconds:.0f} s, checked in {checked.check_seconds:.1f} s;"
        f" {checked.run.fault}"
    )
    return head + "\n" + checked.verdict.text()


def write_summary(path: Path, checked: list[Checked], seconds: float) -> None:
    """Every run's summary, and the whole command's time, as JSON."""
    body = {
        "seconds": round(seconds, 1),
        "passed": all(c.passed for c in checked),
        "runs": [c.summary() for c in checked],
    }
    path.write_text(json.dumps(body, indent=2) + "\n")
