"""bench_core's report: the table of strategies, the script costs, the targets and how it is
measured, on the console and in docs/benchmarks/core.md, core.png and core.json."""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from loadtests.core_measure import AMPLE_STOCK, SCARCE_STOCK, Row
from loadtests.core_strategies import LOCK_POLL_SECONDS, LOCK_TIMEOUT_SECONDS, LOCK_WAIT_SECONDS
from loadtests.reporting import fmt, report_header, write_report
from loadtests.script_costs import MEMORY_TARGET, Cost, Memory
from loadtests.script_costs import TARGETS as SCRIPT_TARGETS
from loadtests.script_costs import lines as script_cost_lines

RATIO_AT = 100


def table_lines(rows: Sequence[Row]) -> list[str]:
    header = ["strategy", "N", "holds/s", "p50 ms", "p99 ms", "oversold", "retries", "gave up"]
    body = [
        [
            row.strategy,
            str(row.concurrency),
            fmt(row.holds_per_second, 0),
            fmt(row.p50_ms, 3),
            fmt(row.p99_ms, 3),
            fmt(row.oversold),
            str(row.retries),
            str(row.gave_up),
        ]
        for row in rows
    ]
    return [f"| {' | '.join(cells)} |" for cells in [header, ["---"] * len(header), *body]]


def ratios(rows: Sequence[Row], at: int) -> dict[str, float | None]:
    """lua's throughput over each other strategy's, at concurrency `at`."""
    speed = {row.strategy: row.holds_per_second for row in rows if row.concurrency == at}
    lua = speed.get("lua")
    result: dict[str, float | None] = {}
    for other in ("floor", "watch", "postgres"):
        base = speed.get(other)
        result[f"lua/{other}"] = lua / base if lua and base else None
    return result


def targets(
    rows: Sequence[Row], costs: Sequence[Cost], memory: Sequence[Memory]
) -> list[tuple[str, str, str, str]]:
    """(check, target, measured, met) for each target of the issues."""
    at = ratios(rows, RATIO_AT)

    def verdict(value: float | None, ok: bool) -> str:
        return "n/a" if value is None or math.isnan(value) else ("yes" if ok else "**no**")

    checks = []
    floor = max((c.usec_per_call for c in costs if c.phase == "floor"), default=math.nan)
    for cost in costs:
        target = SCRIPT_TARGETS.get(cost.phase)
        if cost.version == "now" and target is not None:
            ratio = cost.usec_per_call / floor
            checks.append(
                (
                    f"{cost.phase}, server side / floor script",
                    f"≤ {target:g}",
                    f"{fmt(ratio)} ({fmt(cost.usec_per_call)} µs)",
                    verdict(ratio, ratio <= target),
                )
            )
    for held in memory:
        if held.version == "now":
            who = "a new customer id per hold" if held.customer else "no customer id"
            checks.append(
                (
                    f"Redis memory per live hold, {who}",
                    f"≤ {MEMORY_TARGET} B",
                    f"{held.bytes_per_hold:.0f} B",
                    verdict(held.bytes_per_hold, held.bytes_per_hold <= MEMORY_TARGET),
                )
            )
    for name, floor in (("lua/floor", 0.8), ("lua/watch", 10.0), ("lua/postgres", 5.0)):
        value = at[name]
        checks.append(
            (
                f"{name} at N = {RATIO_AT}",
                f"≥ {floor:g}",
                fmt(value),
                verdict(value, value is not None and value >= floor),
            )
        )
    counted = [row.oversold for row in rows if row.oversold is not None]
    worst = max(counted) if counted else None
    checks.append(
        (
            "oversold",
            "0 everywhere",
            f"max {fmt(worst)}",
            verdict(None if worst is None else float(worst), worst == 0),
        )
    )
    return checks


def markdown(
    rows: Sequence[Row],
    costs: Sequence[Cost],
    memory: Sequence[Memory],
    baseline: str | None,
    info: dict[str, str],
    command: str,
    notes: Sequence[str],
    pool_sizes: dict[int, int],
) -> str:
    """core.md: the table, the script costs, the targets, how it is measured, the notes."""
    lines = [
        *report_header("Core benchmark: one hot SKU", "loadtests/bench_core.py", command, info),
        "## Holds of 1 unit, N concurrent buyers",
        "",
        *table_lines(rows),
        "",
        "![holds per second against concurrency](core.png)",
        "",
        "## Server-side cost of each hot script, and memory per hold",
        "",
        "`INFO commandstats` after `CONFIG RESETSTAT` and a phase of one script alone"
        " (10 buyers, the same number of calls each phase, the quickest of 3 rounds): the"
        " script command's"
        " usec_per_call, and the commands it ran per call (loadtests/script_costs.py)."
        + (
            f" The baseline is the scripts of {baseline}, as they ran then (EVALSHA of the"
            " shared prelude and the script)."
            if baseline
            else ""
        ),
        "",
        *script_cost_lines(costs, memory, baseline),
        "",
        "## Targets",
        "",
        "| check | target | measured | met |",
        "| --- | --- | --- | --- |",
        *(f"| {' | '.join(check)} |" for check in targets(rows, costs, memory)),
        "",
        "## How it is measured",
        "",
        *method_items(pool_sizes),
    ]
    if notes:
        lines += ["", "## Notes from this run", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def method_items(pool_sizes: dict[int, int]) -> list[str]:
    """The items of "How it is measured": the stock, the client, each strategy, the checks."""
    pools = ", ".join(f"N={n}: {size}" for n, size in pool_sizes.items()) or "n/a"
    return [
        f"- One hot SKU with {AMPLE_STOCK:,} units, so no buyer is refused during the window;"
        " every strategy starts from the same stock. Each buyer (an asyncio task) holds 1 unit,"
        " records the latency, and repeats until the window ends; holds/s is holds divided by"
        " the time until the last buyer finished.",
        "- One `redis.asyncio` client for every Redis strategy, its connection pool larger than N"
        " (redis-py's connections, as the service's).",
        "- lua: `Inventory.holds.reserve([('hot', 1)])`, one FCALL of the reserve function."
        " floor: a one-command script (`INCR`) on the same client: the round-trip floor, it"
        " sells nothing, so it has no oversold figure.",
        "- watch: WATCH, GET, MULTI, DECR + SET of the hold, EXEC; retried on WatchError"
        " (retries counted; a hold counts only when EXEC succeeds).",
        f"- lock: redis-py `Lock` (timeout {LOCK_TIMEOUT_SECONDS:g} s, blocking_timeout"
        f" {LOCK_WAIT_SECONDS:g} s, polling every {LOCK_POLL_SECONDS * 1000:g} ms) around"
        " GET, check, SET available - 1 and SET of the hold; a timed-out wait counts as a"
        " retry.",
        "- postgres: `SELECT … FOR UPDATE` of the stock row, `UPDATE` it and `INSERT` the"
        " hold (with a foreign key to the stock row) in one transaction, through a"
        " psycopg_pool of min(N, 100, what max_connections leaves free) connections"
        f" (here: {pools}).",
        f"- oversold: after each window the store's own counters are compared with the holds"
        f" granted; then the strategy gets {SCARCE_STOCK} units and the same N buyers race"
        f" until sold out; oversold = max(0, granted - stock, counted by the store - stock).",
        "- retries: WatchError retries (watch) or lock waits that timed out (lock) during the"
        " window. gave up: buyers still retrying when the window closed; those attempts are"
        " not holds and their latency is not in p50 / p99.",
        "- Client, Redis and PostgreSQL share the same machine, so at high N the single Python"
        " process is usually the bottleneck, not the store.",
    ]


def chart(rows: Sequence[Row], path: Path) -> None:
    figure = Figure(figsize=(8, 5))
    axes = figure.subplots()
    for name in dict.fromkeys(row.strategy for row in rows):
        points = [(row.concurrency, row.holds_per_second) for row in rows if row.strategy == name]
        axes.plot(*zip(*points, strict=True), marker="o", label=name)
    axes.set_xscale("log")
    levels = sorted({row.concurrency for row in rows})
    axes.set_xticks(levels, [str(level) for level in levels])
    axes.set_yscale("log")
    axes.set_xlabel("concurrent buyers (N, log scale)")
    axes.set_ylabel("holds per second (log scale)")
    axes.set_title("One hot SKU, 1-unit holds")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def report(
    rows: Sequence[Row],
    costs: Sequence[Cost],
    memory: Sequence[Memory],
    info: dict[str, str],
    args: argparse.Namespace,
    notes: Sequence[str],
    pool_sizes: dict[int, int],
) -> None:
    print("\n".join(table_lines(rows)))
    print()
    print("\n".join(script_cost_lines(costs, memory, args.baseline)))
    for name, value in ratios(rows, RATIO_AT).items():
        print(f"{name} at N = {RATIO_AT}: {fmt(value)}")
    for note in notes:
        print(f"note: {note}")
    command = ("python -m loadtests.bench_core " + shlex.join(sys.argv[1:])).strip()
    write_report(
        "core",
        markdown(rows, costs, memory, args.baseline, info, command, notes, pool_sizes),
        lambda path: chart(rows, path),
        {
            "rows": [row.as_json() for row in rows],
            "scripts": [cost.as_json() for cost in costs],
            "memory": [
                {"version": m.version, "customer": m.customer, "bytes_per_hold": m.bytes_per_hold}
                for m in memory
            ],
        },
        args.json,
    )
