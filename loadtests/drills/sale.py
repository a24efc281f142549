"""One sale of a drill on a stack of its own: Locust's buyers, the probe, the fault injected
while they run, then the drain, the sweep and the verifier; and what it all gave."""

from __future__ import annotations

import argparse
import csv
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from loadtests.drills.drill import Drill
from loadtests.drills.target import Probe, Target, Timings, own_stores
from loadtests.sale_locust import NameRow, locust_rows, run_locust
from loadtests.sale_stack import Stack, drain, start_stack, sweep, verify

# Stripe redelivers a failed webhook for three days; the simulator, by default, for about a
# second. In a drill it keeps trying as Stripe would, over minutes: an outage must not lose
# an event (an event never delivered fails the drill).
PATIENT_DELIVERY = ("--webhook-attempts", "12", "--webhook-retry-seconds", "0.25")


@dataclass
class SaleRun:
    """What one sale of a drill gave: Locust's rows and failures, the probe, the fault's
    timings, and what the verifier and the simulator said after it."""

    rows: list[NameRow]
    failures: dict[str, int]
    probe: Probe
    timings: Timings | None
    problems: list[str]
    verified: bool
    report: str
    undelivered: int
    cut_deliveries: int
    recovered_sessions: int
    cut_checkouts: int


def run_sale(
    drill: Drill,
    sale: argparse.Namespace,
    workdir: Path,
    fault_at: float | None,
) -> SaleRun:
    """One sale on a stack of its own; the drill's fault `fault_at` seconds in (None: none)."""
    stack = Stack(workdir)
    report_dir = workdir / "report"
    report_dir.mkdir(parents=True)
    with own_stores(workdir, drill.redis_args) as stores:
        try:
            start_stack(
                stack,
                sale,
                stores.redis.url,
                stores.mongo.uri,
                (*PATIENT_DELIVERY, *drill.sim_args),
                drill.service_env,
            )
            probe = Probe(stack.service_url)
            target = Target(stores, stack, probe, sale.workers)
            timings = _sale_under_fault(drill, sale, target, report_dir, fault_at)
            time.sleep(sale.hold_seconds + 1 + drill.settle_seconds)
            drain(stack)
            swept = sweep(stack)
            undelivered = drain(stack)
            passed, report = verify(stack, report_dir / "flash-sale_stats.csv")
            cut_deliveries = _deliveries_cut_off(stack)
        finally:
            stack.stop()
    return SaleRun(
        rows=locust_rows(report_dir),
        failures=failures_by_message(report_dir),
        probe=probe,
        timings=timings,
        problems=target.problems,
        cut_checkouts=target.cut_checkouts,
        verified=passed,
        report=report,
        undelivered=undelivered,
        cut_deliveries=cut_deliveries,
        recovered_sessions=_count_in(stack.logs["service"], "recovered Checkout Session")
        + _recovered_by(swept),
    )


def _sale_under_fault(
    drill: Drill,
    sale: argparse.Namespace,
    target: Target,
    report_dir: Path,
    fault_at: float | None,
) -> Timings | None:
    """Locust's sale, with the probe asking all along and the drill's fault injected
    `fault_at` seconds in (None: no fault); the fault's timings."""
    timings: list[Timings] = []

    def fault() -> None:
        if fault_at is not None:
            time.sleep(fault_at)
            timings.append(drill.inject(target))

    prober = threading.Thread(target=target.probe.run, daemon=True)
    injector = threading.Thread(target=fault, daemon=True)
    prober.start()
    injector.start()
    run_locust(target.stack, sale, report_dir)
    injector.join()
    target.probe.stopped.set()
    prober.join()
    return timings[0] if timings else None


def _deliveries_cut_off(stack: Stack) -> int:
    with httpx.Client(base_url=stack.sim_url, timeout=30) as http:
        deliveries = http.get("/_sim/deliveries").json()["data"]
    return sum(1 for delivery in deliveries if delivery["status"] is None)


def _recovered_by(swept: str) -> int:
    """The sessions `reservation sweep` recovered, from its one line of output."""
    found = re.search(r"(\d+) unrecorded sessions recovered", swept)
    return int(found.group(1)) if found else 0


def _count_in(log: Path, text: str) -> int:
    with log.open(errors="replace") as handle:
        return sum(text in line for line in handle)


def failures_by_message(report_dir: Path) -> dict[str, int]:
    """Locust's failed requests by message (flash-sale_failures.csv), over every request name."""
    path = report_dir / "flash-sale_failures.csv"
    if not path.exists():
        return {}
    with path.open() as handle:
        found: dict[str, int] = {}
        for row in csv.DictReader(handle):
            found[row["Error"]] = found.get(row["Error"], 0) + int(row["Occurrences"])
        return found
