"""The spike search's rows (loadtests/spike_search.py, loadtests/spike_room.py) from a sale's
summary and Locust's files: a spike counts only when it passed and arrived in time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadtests.spike_room import room_rung_of, verdict
from loadtests.spike_search import rung_of


def summary(passed: bool = True) -> dict[str, Any]:
    rows = [
        ("queue join", 10_000, 900.0),
        ("queue join: again", 12, 800.0),
        ("queue poll", 20_000, 300.0),
        ("queue poll: sold out", 9_000, 200.0),
        ("reserve (admitted)", 130, 50.0),
        ("reserve", 40, 70.0),
        ("reserve: sold out", 4_000, 60.0),
        ("Aggregated", 43_182, 900.0),
    ]
    return {
        "passed": passed,
        "verifier_passed": True,
        "requests_failed": 0,
        "undelivered": 0,
        "rows": [{"name": n, "requests": r, "per_second": r / 60, "p99": p} for n, r, p in rows],
        "totals": {"orders paid": 100},
        "cpu": {"locust mean %": 80.0, "locust peak %": 99.0, "others mean %": 12.0},
    }


def arrived(report_dir: Path, users: int, seconds: float) -> Path:
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / "flash-sale_arrival.json"
    path.write_text(json.dumps({"users": users, "seconds": seconds}))
    return report_dir


def test_a_room_rung_counts_joins_polls_and_holds(tmp_path: Path) -> None:
    rung = room_rung_of(10_000, 100, summary(), arrived(tmp_path, 10_000, 10.4), 10.0)
    assert (rung.joins, rung.polls, rung.admitted_holds) == (10_012, 29_000, 130)
    assert (rung.join_p99_ms, rung.poll_p99_ms) == (900.0, 300.0)
    assert (rung.absorbed, rung.on_time, rung.arrived_seconds) == (True, True, 10.4)
    assert (rung.locust_cpu, rung.others_cpu, rung.paid) == (80.0, 12.0, 100)


def test_a_spike_that_arrived_late_is_not_absorbed(tmp_path: Path) -> None:
    late = room_rung_of(20_000, 100, summary(), arrived(tmp_path / "a", 20_000, 16.0), 10.0)
    assert (late.absorbed, late.on_time) == (False, False)
    assert verdict(late.absorbed, late.on_time) == "**no** (arrived late)"
    never = rung_of(5_000, 100, summary(), tmp_path / "missing", 10.0)
    assert (never.absorbed, never.arrived_seconds) == (False, -1.0)
    failed = rung_of(5_000, 100, summary(passed=False), arrived(tmp_path / "b", 5_000, 9.0), 10.0)
    assert (failed.absorbed, failed.on_time, failed.attempts) == (False, True, 4_040)
    assert verdict(failed.absorbed, failed.on_time) == "**no**"


def test_without_the_arrival_file_the_history_says_when(tmp_path: Path) -> None:
    history = tmp_path / "flash-sale_stats_history.csv"
    lines = ["Timestamp,User Count,Type,Name"]
    lines += [f"{100 + t},{min(t * 1000, 5000)},,Aggregated" for t in range(12)]
    history.write_text("\n".join(lines) + "\n")
    rung = rung_of(5_000, 100, summary(), tmp_path, 10.0)
    assert (rung.arrived_seconds, rung.absorbed) == (5.0, True)
