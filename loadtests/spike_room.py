"""The spike search's sales with the waiting room on (`python -m loadtests.spike_search
--waiting-room on|both`): one whole sale per size, the crowd in the `fair-start` scenario, and
its row of the room-on table."""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests import run_flash_sale

JOINS = ("queue join", "queue join: again")
POLLS = ("queue poll", "queue poll: admitted", "queue poll: sold out", "queue poll: expired")
ADMITTED = "reserve (admitted)"
# A spike counts only if Locust ran all its users within the arrival window and this much
# more: the second of arrival jitter, and Locust's last tick of the ramp.
ARRIVAL_SLACK_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class RoomRung:
    buyers: int
    absorbed: bool  # passed (0 failed, verifier green, all delivered) and arrived on time
    on_time: bool  # all users running within the arrival window (+ ARRIVAL_SLACK_SECONDS)
    joins: int
    join_p99_ms: float
    polls: int
    poll_p99_ms: float
    requests_per_second: float  # every request of the sale, over its length
    admitted_holds: int
    failed: int
    paid: int
    stock: int
    verifier: bool
    undelivered: int
    locust_cpu: float  # mean % of one core over the sale
    locust_cpu_peak: float
    service_cpu: float
    machine_cpu: float
    others_cpu: float  # the machine's CPU beyond this run's processes (other users' load)
    arrived_seconds: float  # from Locust's first user to its last (its history CSV)


def arrived_seconds(report_dir: Path, users: int) -> float:
    """How long Locust took from its start to running all `users` (its master's word,
    loadtests/locust_arrival.py; else its history CSV, whose counts lag up to 3 s with
    workers; the users' first requests come up to a second of arrival jitter later); -1 when
    it never ran them all."""
    arrival = report_dir / "flash-sale_arrival.json"
    if arrival.exists():
        found = json.loads(arrival.read_text())
        return float(found["seconds"]) if int(found["users"]) >= users else -1.0
    path = report_dir / "flash-sale_stats_history.csv"
    if not path.exists():
        return -1.0
    with path.open() as handle:
        rows = [
            (int(row["Timestamp"]), int(row["User Count"]))
            for row in csv.DictReader(handle)
            if row["Name"] == "Aggregated"
        ]
    full = [t for t, count in rows if count >= users]
    return float(full[0] - rows[0][0]) if rows and full else -1.0


def on_time(report_dir: Path, users: int, window: float) -> tuple[float, bool]:
    """How long the users took to arrive, and whether that was within `window` (+ slack)."""
    arrived = arrived_seconds(report_dir, users)
    return arrived, 0 <= arrived <= window + ARRIVAL_SLACK_SECONDS


def room_rung_of(
    buyers: int, stock: int, summary: dict[str, Any], report_dir: Path, window: float
) -> RoomRung:
    rows = {row["name"]: row for row in summary["rows"]}
    arrived, in_time = on_time(report_dir, buyers, window)
    total = rows.get("Aggregated", {})
    cpu = summary.get("cpu", {})

    def count(names: tuple[str, ...]) -> int:
        return sum(rows[name]["requests"] for name in names if name in rows)

    def p99(names: tuple[str, ...]) -> float:
        return max((rows[name]["p99"] for name in names if name in rows), default=0.0)

    return RoomRung(
        buyers=buyers,
        absorbed=bool(summary["passed"]) and in_time,
        on_time=in_time,
        joins=count(JOINS),
        join_p99_ms=p99(JOINS),
        polls=count(POLLS),
        poll_p99_ms=p99(POLLS),
        requests_per_second=float(total.get("per_second", 0.0)),
        admitted_holds=count((ADMITTED,)),
        failed=int(summary["requests_failed"]),
        paid=int(summary["totals"].get("orders paid", 0)),
        stock=stock,
        verifier=bool(summary["verifier_passed"]),
        undelivered=int(summary["undelivered"]),
        locust_cpu=float(cpu.get("locust mean %", 0.0)),
        locust_cpu_peak=float(cpu.get("locust peak %", 0.0)),
        service_cpu=float(cpu.get("service mean %", 0.0)),
        machine_cpu=float(cpu.get("machine mean %", 0.0)),
        others_cpu=float(cpu.get("others mean %", 0.0)),
        arrived_seconds=arrived,
    )


def run_room_rung(args: argparse.Namespace, buyers: int) -> tuple[RoomRung, dict[str, Any]]:
    """One sale of `buyers` arriving within --arrive-seconds into the hot SKU's room."""
    report_dir: Path = args.report_dir / f"room-{buyers}"
    argv = [
        *("--users", str(buyers), "--tags", "fair-start", "--waiting-room"),
        *("--admit-per-second", str(args.admit_per_second)),
        *("--max-active", str(args.max_active)),
        *("--admission-seconds", str(args.admission_seconds)),
        *("--stock", str(args.stock), "--skus", "0", "--seconds", str(args.room_seconds)),
    ]
    print(f"\n=== room on: {buyers:,} buyers within {args.arrive_seconds:g} s ===", flush=True)
    summary = run_sale(args, argv, report_dir)
    return room_rung_of(buyers, args.stock, summary, report_dir, args.arrive_seconds), summary


def run_sale(args: argparse.Namespace, argv: list[str], report_dir: Path) -> dict[str, Any]:
    """One sale of the search (its own `argv`, then what every rung shares) into `report_dir`,
    no file of an earlier run read back: its summary."""
    argv = [
        *argv,
        *("--spike-seconds", str(args.arrive_seconds), "--leave-seconds", "0"),
        *("--patience", str(args.patience), "--hold-seconds", str(args.hold_seconds)),
        *("--workers", str(args.workers), "--profile-seconds", str(args.profile_seconds)),
        *("--locust-processes", str(args.locust_processes)),
        *("--locust-nice", str(args.locust_nice), "--stack-nice", str(args.stack_nice)),
        *("--report-dir", str(report_dir)),
    ]
    for stale in ("flash-sale.json", "flash-sale_arrival.json"):
        (report_dir / stale).unlink(missing_ok=True)
    if run_flash_sale.main(argv) == 130:
        raise KeyboardInterrupt  # the sale was interrupted (SIGTERM, Ctrl-C): so is the search
    summary: dict[str, Any] = json.loads((report_dir / "flash-sale.json").read_text())
    return summary


def verdict(absorbed: bool, in_time: bool) -> str:
    """The "absorbed" cell: yes, no, or no because the spike did not arrive in time."""
    if absorbed:
        return "yes"
    return "**no**" if in_time else "**no** (arrived late)"


def room_table(args: argparse.Namespace, rungs: list[RoomRung]) -> list[str]:
    """The room-on table of search.md, and its largest absorbed spike."""
    lines = [
        "| buyers | all arrived after s | absorbed | joins | join p99 ms | polls | poll p99 ms "
        "| requests/s "
        "| holds admitted | failed requests | paid / stock | verifier | Locust CPU mean / peak "
        "| service CPU | machine CPU | of it not this run |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.buyers:,} | {r.arrived_seconds:g} | {verdict(r.absorbed, r.on_time)} | "
        f"{r.joins:,} | "
        f"{r.join_p99_ms:,.0f} | {r.polls:,} | {r.poll_p99_ms:,.0f} | "
        f"{r.requests_per_second:,.0f} | {r.admitted_holds:,} | {r.failed:,} | "
        f"{r.paid} / {r.stock} | {'green' if r.verifier else '**red**'} | "
        f"{r.locust_cpu:.0f} % / {r.locust_cpu_peak:.0f} % | {r.service_cpu:.0f} % | "
        f"{r.machine_cpu:.0f} % | {r.others_cpu:.0f} % |"
        for r in rungs
    ]
    return lines
