"""The drills' report: docs/reliability.md (one table: drill, load, fault, outcome, then what
each drill saw) and docs/reliability.json. A run of some drills replaces their rows and keeps
the others'."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path

from loadtests.drills.outcome import Outcome

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def write_report(outcomes: Sequence[Outcome]) -> Path:
    """docs/reliability.md and .json: these rows in place of their drills' earlier ones."""
    outcomes = _with_earlier_rows(outcomes)
    lines = [
        *_heading(outcomes),
        *_table(outcomes),
        *_failures(outcomes),
        *_cut_off(outcomes),
        *_against_clean(outcomes),
        *_problems(outcomes),
    ]
    path = DOCS / "reliability.md"
    path.write_text("\n".join(lines) + "\n" + _kept_sections(path))
    (DOCS / "reliability.json").write_text(
        json.dumps([asdict(o) for o in outcomes], indent=2) + "\n"
    )
    return path


def _kept_sections(path: Path) -> str:
    """What the report's last version has from its first `## ` heading on: sections other
    tools write (the linearizability checks, loadtests/linearizability), which the drills'
    report never does, kept as they were."""
    if not path.exists():
        return ""
    text = path.read_text()
    at = text.find("\n## ")
    return "" if at < 0 else text[at:]


def _with_earlier_rows(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """This run's rows, and those of the drills it did not run from the report's last
    version, one row per drill, sorted by drill."""
    path = DOCS / "reliability.json"
    earlier = json.loads(path.read_text()) if path.exists() else []
    known = {f.name for f in fields(Outcome)}
    rows = {
        row["drill"]: Outcome(**{k: v for k, v in row.items() if k in known}) for row in earlier
    }
    rows.update((o.drill, o) for o in outcomes)
    return [rows[name] for name in sorted(rows)]


def _heading(outcomes: Sequence[Outcome]) -> list[str]:
    """The title, the commands that made the rows, and the machine."""
    commands: dict[str, list[str]] = {}
    for o in outcomes:
        commands.setdefault(o.command, []).append(o.drill)
    return [
        "# Reliability drills",
        "",
        *(f"- `{command}`: {', '.join(drills)}" for command, drills in commands.items()),
        "",
        f"Machine: {platform.machine()}, 2 cores, Python {platform.python_version()}; each drill"
        " runs its own redis-server, nx-27017, Stripe simulator (10% duplicate deliveries, delays"
        " up to 3 s) and the service (2 workers), with Locust buyers sharing the cores.",
        "",
    ]


def _table(outcomes: Sequence[Outcome]) -> list[str]:
    """A row per drill: load, fault, oversold, lost or doubled, failures, answers, outcome."""
    lines = [
        "| drill | load held | fault | oversold | lost or doubled orders | events undelivered"
        " | failed requests (expected) | max answer during the fault | recovery | outcome |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for o in outcomes:
        recovery = "never" if o.recovery_seconds is None else f"{o.recovery_seconds:.2f} s"
        lines.append(
            f"| {o.drill} | {o.load} | {o.fault} | {o.oversold} | "
            f"{o.lost_or_doubled or ('none (verifier green)' if o.verifier_passed else o.verifier)}"
            f" | {o.undelivered_events} | {o.failed_requests}"
            f" ({o.failed_requests - o.unexpected_failures}) | "
            f"{o.max_answer_seconds:.2f} s | {recovery} | {'pass' if o.passed else 'FAIL'} |"
        )
    return lines


def _failures(outcomes: Sequence[Outcome]) -> list[str]:
    """What recovery means per drill, which failures are expected, and each drill's failed
    requests by message."""
    lines = [
        "",
        "Recovery: from the end of the fault until the probe got a hold or a sold-out answer"
        " again (Redis drills); for the MongoDB drill, 0 means every probe answer during the"
        " fault was a hold or a sold-out answer (reserves never stopped); worker-killed: until"
        " the replacement worker served; stripe-failing: until a checkout succeeded again;"
        " clock-skew: 0 when every check held; chaos-vs-clean: from the last purchase until the"
        " last event was received, and its max answer is the slowest of the chaos run (not"
        " judged: its load is the purchases themselves).",
        "Expected failures are the 503 answers while a store was down, and requests cut off by"
        " a killed worker (no answer); any other failure fails the drill. Failed requests by"
        " message:",
        "",
    ]
    for o in outcomes:
        lines.append(f"- {o.drill}: " + ("; ".join(o.notes) if o.notes else "none"))
    return lines


def _cut_off(outcomes: Sequence[Outcome]) -> list[str]:
    """Per drill: deliveries and checkouts cut off, sessions the sweeper recovered."""
    lines = [
        "",
        "Webhook deliveries that got no answer (the simulator delivered them again), checkouts"
        " a killed worker never answered, and Checkout Sessions the sweeper recorded from a"
        " checkout attempt nobody finished:",
        "",
    ]
    for o in outcomes:
        lines.append(
            f"- {o.drill}: {o.webhook_deliveries_cut_off} deliveries cut off,"
            f" {o.checkouts_cut_off} of the drill's own checkouts cut off,"
            f" {o.sessions_recovered} sessions recovered"
        )
    return lines


def _against_clean(outcomes: Sequence[Outcome]) -> list[str]:
    """p99 without and with the fault, for the drills judged against a clean sale."""
    compared = [o for o in outcomes if o.p99_ms_without_and_with_fault]
    if not compared:
        return []
    lines = ["", "p99 of the same sale without and with the fault (ms):", ""]
    for o in compared:
        pairs = "; ".join(
            f"{name} {before:g} → {after:g}"
            if before is not None and after is not None
            else f"{name}: not measured"
            for name, (before, after) in o.p99_ms_without_and_with_fault.items()
        )
        lines.append(f"- {o.drill}: {pairs}")
    return lines


def _problems(outcomes: Sequence[Outcome]) -> list[str]:
    """What each drill's faults and checks saw go wrong."""
    failed = [o for o in outcomes if o.problems]
    if not failed:
        return []
    return ["", "Problems:", "", *(f"- {o.drill}: {p}" for o in failed for p in o.problems)]
