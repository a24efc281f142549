"""A drill's outcome: its row of docs/reliability.md and docs/reliability.json."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class Outcome:
    """What one drill did and found, and whether it passed."""

    drill: str
    fault: str
    load: str
    passed: bool
    oversold: int
    verifier_passed: bool
    verifier: str
    failed_requests: int
    unexpected_failures: int
    undelivered_events: int
    max_answer_seconds: float
    recovery_seconds: float | None
    notes: list[str] = field(default_factory=list)
    # Webhook deliveries that got no answer (their worker died or the service was down), and
    # Checkout Sessions the sweeper recorded for checkouts that never recorded them.
    webhook_deliveries_cut_off: int = 0
    sessions_recovered: int = 0
    checkouts_cut_off: int = 0  # the drill's own checkouts a killed worker never answered
    # Drills judged against a sale with no fault: p99 in ms per request name, without and with.
    p99_ms_without_and_with_fault: dict[str, list[float | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # What a drill that judges lost or doubled orders itself found (empty: the verifier says).
    lost_or_doubled: str = ""
    # The command that made this row (rows of reports older than this field: the plain one).
    command: str = "python -m loadtests.drills"


def failure_notes(failures: Mapping[str, int]) -> list[str]:
    """Failed requests by message, as the report lists them ("3x 503: ...")."""
    return [f"{n}x {message[:120]}" for message, n in sorted(failures.items())]
