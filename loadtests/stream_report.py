"""The event stream benchmark's figures (loadtests/bench_stream.py): one row per window, the
table, the Markdown, the chart and the JSON."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from loadtests.reporting import DOCS, fmt, report_header, write_report

NAME = "stream"
COMMAND = "python -m loadtests.bench_stream"


@dataclass(frozen=True, slots=True)
class Row:
    """One window: what Redis did, what the feed's share of it was, what the streams got."""

    streams: int
    seconds: float
    holds_per_second: float
    commands_per_second: float  # every command Redis ran (those inside scripts too)
    feed_scripts_per_second: float  # FCALLs less one per hold: the feed's product reads
    feed_commands_per_second: float  # every command less what the holds cost alone
    feed_reads_per_second: float  # as the server counts them (reservation_stock_feed_reads)
    events_per_second: float  # delivered, all streams together
    events_per_stream_second: float
    server_cpu: float  # percent of one core
    client_cpu: float
    redis_cpu: float
    server_rss_mib: float
    all_final: bool  # every stream came to show the final stock

    @staticmethod
    def of(windows: Sequence[dict[str, Any]]) -> list[Row]:
        """The rows of the windows; the first (no stream) prices one hold."""
        alone = windows[0]
        per_hold = sum(alone["calls"].values()) / max(alone["holds"], 1)
        rows = []
        for w in windows:
            seconds, holds, calls = w["seconds"], w["holds"], w["calls"]
            commands = sum(calls.values())
            rows.append(
                Row(
                    streams=w["streams"],
                    seconds=round(seconds, 2),
                    holds_per_second=holds / seconds,
                    commands_per_second=commands / seconds,
                    feed_scripts_per_second=(calls.get("fcall", 0) - holds) / seconds,
                    feed_commands_per_second=(commands - holds * per_hold) / seconds,
                    feed_reads_per_second=w["feed_reads"] / seconds,
                    events_per_second=w["events"] / seconds,
                    events_per_stream_second=w["events"] / seconds / max(w["streams"], 1),
                    server_cpu=w["server_cpu"],
                    client_cpu=w["client_cpu"],
                    redis_cpu=w["redis_cpu"],
                    server_rss_mib=w["server_rss_mib"],
                    all_final=w["all_final"],
                )
            )
        return rows


HEADS = (
    "streams",
    "holds/s",
    "Redis commands/s",
    "feed scripts/s",
    "feed commands/s",
    "feed reads/s (server)",
    "events/s delivered",
    "events/s per stream",
    "CPU server / bench / Redis",
    "server RSS MiB",
    "all final",
)


def cells(row: Row) -> list[str]:
    cpu = f"{row.server_cpu:.0f}% / {row.client_cpu:.0f}% / {row.redis_cpu:.0f}%"
    return [
        fmt(row.streams),
        fmt(row.holds_per_second, 1),
        fmt(row.commands_per_second, 1),
        fmt(row.feed_scripts_per_second, 2),
        fmt(row.feed_commands_per_second, 1),
        fmt(row.feed_reads_per_second, 2),
        fmt(row.events_per_second, 0),
        fmt(row.events_per_stream_second, 2),
        cpu,
        fmt(row.server_rss_mib, 0),
        "yes" if row.all_final else "NO",
    ]


def table(rows: Sequence[Row]) -> list[str]:
    lines = ["| " + " | ".join(HEADS) + " |", "|" + " --- |" * len(HEADS)]
    return lines + ["| " + " | ".join(cells(row)) + " |" for row in rows]


def the_numbers(rows: Sequence[Row]) -> list[str]:
    """The two figures the issue asks for: the feed's Redis work at the fewest and most streams."""
    fewest, most = rows[1], rows[-1]
    return [
        f"**The feed's Redis work: {fmt(fewest.feed_commands_per_second, 1)} commands/s"
        f" ({fmt(fewest.feed_scripts_per_second, 2)} product scripts/s) with {fewest.streams}"
        f" streams, {fmt(most.feed_commands_per_second, 1)} commands/s"
        f" ({fmt(most.feed_scripts_per_second, 2)} product scripts/s) with {most.streams}"
        " streams.** One reader per watched SKU per process reads the product every 0.25 s"
        " (at most 4 scripts/s, each an FCALL and the HMGET and TIME inside it), whoever watches;"
        " a read the process's 0.1 s read cache answers costs none. What differs is noise: a"
        " read that straddles a window's edge, and the reader's pace, which a busy machine"
        " slows (0.25 s plus the read's own time between two reads).",
    ]


def markdown(rows: Sequence[Row], info: dict[str, str], args: argparse.Namespace) -> str:
    lines = report_header(
        "Live stock: Redis work of the event streams", "loadtests/bench_stream.py", COMMAND, info
    )
    lines += [
        "## Result",
        "",
        *the_numbers(rows),
        "",
        *table(rows),
        "",
        f"Each window: {args.seconds:g} s, the driver making holds of one unit at up to"
        f" {args.changes:g} a second (each a change of the stock), after"
        f" {1:g} s for the streams to open and the driver to reach its pace. `reservation serve`"
        " runs one worker against a redis-server of the benchmark's own, so INFO commandstats"
        " counts nothing else; the sweeper and the rebuild check are off for the same reason.",
        "",
        "- *Redis commands/s*: every command Redis ran in the window (INFO commandstats, the calls"
        " inside scripts included), INFO itself left out.",
        "- *feed scripts/s*: the window's FCALLs less one per hold (each hold is one reserve"
        " script): the feed's product reads that reached Redis.",
        "- *feed commands/s*: every command less the holds' share at what a hold cost in the"
        " window without streams.",
        "- *feed reads/s (server)*: the feed's reads as the server counts them, read cache"
        " answers included.",
        "- *events/s*: `stock` events the streams received; per stream at most 4/s (coalesced).",
        "- *CPU*: percent of one core: the server's process, this benchmark (the streams'"
        " clients and the driver), Redis.",
        "- *all final*: after the window every stream came to show the product's final stock.",
        "",
    ]
    if args.note:
        lines += ["## Conditions", "", args.note, ""]
    return "\n".join(lines)


def chart(rows: Sequence[Row], path: Path) -> None:
    streamed = [row for row in rows if row.streams]
    labels = [f"{row.streams} streams" for row in streamed]
    figure = Figure(figsize=(9, 4.2))
    left, right = figure.subplots(1, 2)
    commands = [row.feed_commands_per_second for row in streamed]
    bars = left.bar(labels, commands, color="tab:blue")
    for bar, value in zip(bars, commands, strict=True):
        x = bar.get_x() + bar.get_width() / 2
        left.annotate(f"{value:.1f}", (x, bar.get_height()), ha="center", va="bottom")
    left.set_ylabel("Redis commands per second")
    left.set_title("the feed's Redis work", fontsize=10)
    left.set_ylim(0, max([*commands, 1.0]) * 1.4)
    events = [row.events_per_second for row in streamed]
    bars = right.bar(labels, events, color="tab:green")
    for bar, value in zip(bars, events, strict=True):
        x = bar.get_x() + bar.get_width() / 2
        right.annotate(f"{value:,.0f}", (x, bar.get_height()), ha="center", va="bottom")
    right.set_ylabel("events per second")
    right.set_title("events delivered (all streams)", fontsize=10)
    right.set_ylim(0, max([*events, 1.0]) * 1.2)
    for axes in (left, right):
        axes.grid(True, axis="y", alpha=0.3)
    figure.suptitle("one reader per SKU per process, whatever the number of streams")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def report(rows: Sequence[Row], info: dict[str, str], args: argparse.Namespace) -> None:
    print("\n".join(table(rows)))
    print()
    print(*the_numbers(rows))
    document = {"rows": [asdict(row) for row in rows], "machine": info}
    write_report(
        NAME,
        markdown(rows, info, args),
        lambda path: chart(rows, path),
        document,
        args.json or str(DOCS / f"{NAME}.json"),
    )
