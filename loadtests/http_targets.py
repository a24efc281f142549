"""The HTTP benchmark's targets: throughput against the floor, p99, and two workers."""

from __future__ import annotations

from collections.abc import Sequence

from loadtests.http_measure import Row
from loadtests.reporting import fmt

Target = tuple[str, str, str, bool | None]  # check, target, measured, met (None: no figure)


def speed(rows: Sequence[Row], case: str) -> Row | None:
    return next((row for row in rows if row.case == case), None)


def targets(rows: Sequence[Row], connections: int) -> list[Target]:
    """(check, target, measured, met); met None when a figure is missing."""
    reserve, sold_out = speed(rows, "reserve"), speed(rows, "reserve_sold_out")
    two, product = speed(rows, "reserve_2_workers"), speed(rows, "get_product")

    def ratio(row: Row | None, base: Row | None) -> float | None:
        if row is None or base is None or not base.requests_per_second:
            return None
        return row.requests_per_second / base.requests_per_second

    checks: list[tuple[str, str, float | None, float, bool]] = [
        ("reserve / floor", "≥ 0.75", reserve.ratio_to_floor if reserve else None, 0.75, True),
        ("sold-out / floor", "≥ 0.9", sold_out.ratio_to_floor if sold_out else None, 0.9, True),
        ("get_product / floor", "≥ 0.9", product.ratio_to_floor if product else None, 0.9, True),
        (
            f"reserve p99 at {connections} connections",
            "≤ 20 ms",
            reserve.p99_ms if reserve else None,
            20.0,
            False,
        ),
        ("2 workers / 1 worker (reserve)", "≥ 1.5", ratio(two, reserve), 1.5, True),
    ]
    result: list[Target] = []
    for name, target, value, bound, at_least in checks:
        met = None if value is None else (value >= bound if at_least else value <= bound)
        shown = f"{fmt(value)} ms" if "p99" in name else fmt(value)
        result.append((name, target, shown, met))
    return result


def missed(rows: Sequence[Row], connections: int) -> bool:
    return any(met is False for *_, met in targets(rows, connections))
