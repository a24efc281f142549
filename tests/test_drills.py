"""The fault drills' report (loadtests/drills/report.py): a run of some drills replaces their
rows and keeps the others'. The drills themselves run for minutes: `python -m loadtests.drills`."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from loadtests.drills import Outcome, report, write_report

ROW = Outcome(
    drill="redis-lost",
    fault="Redis killed",
    load="60 req/s",
    passed=True,
    oversold=0,
    verifier_passed=True,
    verifier="verifier: every invariant holds",
    failed_requests=3,
    unexpected_failures=0,
    undelivered_events=0,
    max_answer_seconds=0.1,
    recovery_seconds=0.2,
)


@pytest.fixture
def docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(report, "DOCS", tmp_path)
    return tmp_path


def rows(docs: Path) -> dict[str, dict[str, object]]:
    return {row["drill"]: row for row in json.loads((docs / "reliability.json").read_text())}


def test_a_run_of_some_drills_replaces_their_rows_and_keeps_the_others(docs: Path) -> None:
    # An earlier report, written before rows carried their command or the comparison.
    earlier = [asdict(ROW), asdict(replace(ROW, drill="mongodb-stopped", passed=False))]
    for row in earlier:
        del row["command"], row["lost_or_doubled"]
    (docs / "reliability.json").write_text(json.dumps(earlier))
    again = replace(ROW, drill="mongodb-stopped", load="61 req/s")
    again.command = "python -m loadtests.drills --only mongodb-stopped"
    compared = replace(
        ROW, drill="chaos-vs-clean", lost_or_doubled="none: the 3 buyers end the same"
    )
    compared.command = "python -m loadtests.drills --only chaos-vs-clean"
    write_report([again, compared])

    found = rows(docs)
    assert sorted(found) == ["chaos-vs-clean", "mongodb-stopped", "redis-lost"]
    assert found["mongodb-stopped"]["load"] == "61 req/s"
    assert found["mongodb-stopped"]["passed"] is True
    assert found["redis-lost"] == asdict(ROW)  # kept as it was, with the plain command
    text = (docs / "reliability.md").read_text()
    assert "- `python -m loadtests.drills`: redis-lost\n" in text
    assert "- `python -m loadtests.drills --only mongodb-stopped`: mongodb-stopped\n" in text
    table = [line for line in text.splitlines() if line.startswith("| ")][1:]  # no header
    assert [line.split(" | ")[0] for line in table] == [
        "| chaos-vs-clean",
        "| mongodb-stopped",
        "| redis-lost",
    ]
    assert "| none: the 3 buyers end the same |" in table[0]
    assert "| none (verifier green) |" in table[2]


def test_the_first_report_has_this_runs_rows_alone(docs: Path) -> None:
    write_report([ROW])
    assert list(rows(docs)) == ["redis-lost"]


def test_the_report_keeps_the_sections_other_tools_wrote(docs: Path) -> None:
    write_report([ROW])
    with (docs / "reliability.md").open("a") as report_file:
        report_file.write("\n## Linearizability\n\nkept as it was\n")
    write_report([replace(ROW, load="61 req/s")])
    text = (docs / "reliability.md").read_text()
    assert text.startswith("# Reliability drills\n")
    assert "| 61 req/s |" in text
    assert text.endswith("\n## Linearizability\n\nkept as it was\n")
    assert text.count("## Linearizability") == 1
