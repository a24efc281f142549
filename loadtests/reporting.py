"""What every benchmark report shares: figures as text, the header of its Markdown, and the
files it writes under docs/benchmarks (NAME.md, NAME.png, NAME.json)."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


def fmt(value: float | int | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:,.{digits}f}"


def percentile_ms(ordered: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of sorted latencies (seconds), in milliseconds."""
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1] * 1000


def report_header(title: str, module: str, command: str, info: dict[str, str]) -> list[str]:
    """The top of a benchmark's Markdown: title, provenance, command, machine table."""
    return [
        f"# {title}",
        "",
        f"Written by `{module}`; rerun it rather than editing this file.",
        "",
        f"Command: `{command}`",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {key} | {value} |" for key, value in info.items()),
        "",
    ]


def write_report(
    name: str,
    markdown: str,
    chart: Callable[[Path], None],
    rows: Sequence[dict[str, Any]] | dict[str, Any],
    json_path: str,
) -> None:
    """DOCS/NAME.md, DOCS/NAME.png (drawn by `chart`) and the rows as JSON, in DOCS/NAME.json
    and at `json_path` too; says what it wrote."""
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / f"{name}.md").write_text(markdown, encoding="utf-8")
    chart(DOCS / f"{name}.png")
    dumped = json.dumps(rows if isinstance(rows, dict) else list(rows), indent=2) + "\n"
    json_paths = list(dict.fromkeys([DOCS / f"{name}.json", Path(json_path).resolve()]))
    for path in json_paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumped, encoding="utf-8")
    written = [DOCS / f"{name}.md", DOCS / f"{name}.png", *json_paths]
    print(f"\nwrote {', '.join(str(path) for path in written)}")


def add_json_option(parser: argparse.ArgumentParser, name: str) -> None:
    """--json FILE: where write_report also writes the rows (DOCS/NAME.json by default)."""
    parser.add_argument(
        "--json",
        default=str(DOCS / f"{name}.json"),
        metavar="FILE",
        help=f"also write the rows here (docs/benchmarks/{name}.json is always written)",
    )
