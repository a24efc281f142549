"""The verifier's look at a sale's bots (loadtests/verify_bots.py): from Locust's stats CSV and
Stripe's sessions, every attempt let through or refused otherwise than promised is a finding."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from loadtests.verify_bots import BotRow, attempts, bot_findings, bot_rows


def _stats(path: Path, rows: list[tuple[str, int]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["Type", "Name", "Request Count"])
        writer.writeheader()
        for name, count in rows:
            writer.writerow({"Type": "POST", "Name": name, "Request Count": count})
    return path


def test_refused_bots_pass(tmp_path: Path) -> None:
    stats = _stats(
        tmp_path / "stats.csv",
        [("reserve", 500), ("bot: invented id", 40), ("bot: borrowed id", 30), ("Aggregated", 570)],
    )
    rows = bot_rows(stats)
    assert rows == [BotRow("bot: invented id", 40), BotRow("bot: borrowed id", 30)]
    assert attempts(rows) == 70
    assert bot_findings(rows, [{"id": "cs_1", "metadata": {"customer_id": "cus_honest"}}]) == []


def test_a_bot_let_through_or_refused_otherwise_is_found(tmp_path: Path) -> None:
    stats = _stats(
        tmp_path / "stats.csv",
        [
            ("bot: invented id", 40),
            ("bot: invented id: accepted", 2),
            ("bot: stolen hold: release: not refused (409 already_committed)", 1),
            ("bot: forged token: accepted", 0),  # a name Locust kept with no request: nothing
        ],
    )
    sessions: list[dict[str, Any]] = [
        {"id": "cs_9", "metadata": {"customer_id": "bot-0123"}},
        {"id": "cs_8"},
    ]
    assert bot_findings(bot_rows(stats), sessions) == [
        "bot: invented id: accepted: 2 attempt(s)",
        "bot: stolen hold: release: not refused (409 already_committed): 1 attempt(s)",
        "session cs_9 was made for bot-0123",
    ]


def test_without_stats_there_is_nothing_to_check(tmp_path: Path) -> None:
    assert bot_rows(tmp_path / "missing.csv") == []
