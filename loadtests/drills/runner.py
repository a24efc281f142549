"""One drill run and judged: its sale with the fault (after the same sale without it, when the
drill is judged against that), then the outcome: passed only when the verifier is green, no
request failed unexpectedly, every answer came within bound, the system recovered, every
event was delivered and the fault saw nothing go wrong."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

from loadtests.drills.drill import Drill
from loadtests.drills.outcome import Outcome, failure_notes
from loadtests.drills.sale import SaleRun, run_sale
from loadtests.run_flash_sale import parse_args
from loadtests.sale_locust import NameRow

# An answer slower than this during a fault is an unbounded one.
ANSWER_BOUND_SECONDS = 5.0
BASELINE_FACTOR = 2.0


def run_drill(
    drill: Drill, sale_argv: Sequence[str], fault_at: float, keep: Path | None = None
) -> Outcome:
    """Run `drill` with its fault `fault_at` seconds into the sale; its logs and Locust's
    CSVs under `keep`/<drill> when given (else in a temporary directory)."""
    with contextlib.ExitStack() as cleanup:
        if keep is None:
            workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="drill-")))
        else:
            workdir = keep / drill.name
            workdir.mkdir(parents=True, exist_ok=True)
        sale = parse_args([*sale_argv])
        sale = parse_args([*sale_argv, *drill.sale_args(sale.seconds)])
        # A drill judged against the same sale with no fault runs that one first.
        clean = run_sale(drill, sale, workdir / "clean", None) if drill.baseline else None
        run = run_sale(drill, sale, workdir / "fault", fault_at)
    return judge(drill, sale.seconds, run, clean)


def judge(drill: Drill, seconds: int, run: SaleRun, clean: SaleRun | None) -> Outcome:
    """The outcome of the sale `run` with the fault (`clean`: the same sale without it)."""
    began, ended, recovered = run.timings or (0.0, 0.0, None)
    during = run.probe.during(began, ended + 10)
    max_answer = max((took for _, _, took in during), default=0.0)
    unexpected = sum(
        n for message, n in run.failures.items() if not drill.expected_failure(message)
    )
    problems = list(run.problems)
    p99: dict[str, list[float | None]] = {}
    if clean is not None:
        problems += against_clean(drill, clean, run, p99)
    oversold = sum(1 for line in run.report.splitlines() if "oversold: reserved" in line)
    ok = run.verified and unexpected == 0 and max_answer <= ANSWER_BOUND_SECONDS
    ok = ok and recovered is not None and run.undelivered == 0 and not problems
    return Outcome(
        drill=drill.name,
        fault=drill.fault,
        load=load_held(run.rows, seconds),
        passed=ok,
        oversold=oversold,
        verifier_passed=run.verified,
        verifier=run.report.splitlines()[-1] if run.report else "",
        failed_requests=sum(run.failures.values()),
        unexpected_failures=unexpected,
        undelivered_events=run.undelivered,
        max_answer_seconds=round(max_answer, 3),
        recovery_seconds=None if recovered is None else round(recovered, 2),
        notes=failure_notes(run.failures),
        webhook_deliveries_cut_off=run.cut_deliveries,
        sessions_recovered=run.recovered_sessions,
        checkouts_cut_off=run.cut_checkouts,
        p99_ms_without_and_with_fault=p99,
        problems=problems,
    )


def against_clean(
    drill: Drill, clean: SaleRun, run: SaleRun, p99: dict[str, list[float | None]]
) -> list[str]:
    """What went wrong in the clean sale, and each request name of the drill's baseline whose
    p99 with the fault is over BASELINE_FACTOR x the clean one; fills `p99` (without, with)."""
    problems = list(clean.problems)
    if not clean.verified:
        problems.append("the clean sale's verifier failed: " + clean.report[-300:])
    for name in drill.baseline:
        before, after = _p99(clean.rows, name), _p99(run.rows, name)
        p99[name] = [before, after]
        if before is None or after is None:
            problems.append(f"{name}: no requests to compare")
        elif after > BASELINE_FACTOR * max(before, 1.0):
            problems.append(
                f"{name} p99 {after:g} ms with the fault vs {before:g} ms without"
                f" (over {BASELINE_FACTOR:g}x)"
            )
    return problems


def load_held(rows: Sequence[NameRow], seconds: int) -> str:
    """The load the sale held, from Locust's aggregated row ("no load" without one)."""
    total = next((row for row in rows if row.name == "Aggregated"), None)
    if total is None:
        return "no load"
    return f"{total.requests / seconds:,.0f} req/s over {seconds} s ({total.requests:,} requests)"


def _p99(rows: Sequence[NameRow], name: str) -> float | None:
    return next((row.p99 for row in rows if row.name == name and row.requests), None)
