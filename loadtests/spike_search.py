"""The largest spike this machine absorbs: `python -m loadtests.spike_search`.

    python -m loadtests.spike_search [--start 2500] [--factor 2] [--max 80000] [--min 300]
        [--arrive-seconds 10] [--patience 40] [--seconds 60] [--stock 100]
        [--waiting-room off|on|both] [--room-start N] [--admit-per-second N] [--max-active N]

Runs whole flash sales (loadtests.run_flash_sale, buyers only, delivery chaos on) with more
buyers each time, all arriving within --arrive-seconds, each retrying a sold-out answer every
1-3 s for up to --patience s. A spike is absorbed when the sale ends within the run (at most
150 s) with every request answered, every webhook delivered and the verifier green: nothing
oversold, every paid session one order, no hold left behind; and when it did arrive: Locust
ran all its users within --arrive-seconds and 2 s more (the second of arrival jitter, and the
ramp's last tick; loadtests/locust_arrival.py). A spike Locust could not start in time is
"not absorbed (arrived late)": the load generator, not the service, was the limit. The
search grows the spike until one is not absorbed; when the first is not, it shrinks it until
one is. It writes search.md, search.json and search.png, and each sale's own report in a
folder per size, under --report-dir (docs/benchmarks/spike by default).

With --waiting-room on the same search runs with the hot SKU behind a waiting room
(loadtests/spike_room.py): the crowd (the `fair-start` scenario) joins the room within
--arrive-seconds, before the sale starts, polls as told and buys when admitted
(--admit-per-second, --max-active, --admission-seconds), from --room-start buyers (default: 4
times the largest spike absorbed without the room, else 10,000). `both` runs the search without
the room first, then with it, in one run on one machine: search.md has both tables, side by
side with what limited each (the service's profile, Locust's and the service's CPU).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadtests import run_flash_sale
from loadtests.spike_room import (
    RoomRung,
    on_time,
    room_table,
    run_room_rung,
    run_sale,
    verdict,
)

DOCS = run_flash_sale.DOCS / "spike"
RESERVE_NAMES = ("reserve", "reserve: sold out")


@dataclass(frozen=True, slots=True)
class Rung:
    buyers: int
    absorbed: bool  # passed (0 failed, verifier green, all delivered) and arrived on time
    attempts: int
    attempts_per_second: float
    reserve_p99_ms: float
    sold_out_p99_ms: float
    failed: int
    paid: int
    stock: int
    verifier: bool
    undelivered: int
    locust_cpu: float = 0.0  # mean % of one core over the sale
    locust_cpu_peak: float = 0.0
    service_cpu: float = 0.0
    machine_cpu: float = 0.0
    others_cpu: float = 0.0  # the machine's CPU beyond this run's processes
    arrived_seconds: float = -1.0  # from Locust's first user to its last
    on_time: bool = True  # all users running within the arrival window (+ slack)


def rung_of(
    buyers: int, stock: int, summary: dict[str, Any], report_dir: Path, window: float
) -> Rung:
    rows = {row["name"]: row for row in summary["rows"]}
    reserve = [rows[name] for name in RESERVE_NAMES if name in rows]
    cpu = summary.get("cpu", {})
    arrived, in_time = on_time(report_dir, buyers, window)
    return Rung(
        buyers=buyers,
        absorbed=bool(summary["passed"]) and in_time,
        attempts=sum(row["requests"] for row in reserve),
        attempts_per_second=sum(row["per_second"] for row in reserve),
        reserve_p99_ms=rows.get("reserve", {}).get("p99", 0.0),
        sold_out_p99_ms=rows.get("reserve: sold out", {}).get("p99", 0.0),
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
        on_time=in_time,
    )


def run_rung(args: argparse.Namespace, buyers: int) -> tuple[Rung, dict[str, Any]]:
    report_dir: Path = args.report_dir / f"buyers-{buyers}"
    argv = [
        *("--users", str(buyers), "--buyers", str(buyers), "--tags", "buyers"),
        *("--stock", str(args.stock), "--skus", "0", "--seconds", str(args.seconds)),
    ]
    print(f"\n=== {buyers:,} buyers within {args.arrive_seconds:g} s ===", flush=True)
    summary = run_sale(args, argv, report_dir)
    return rung_of(buyers, args.stock, summary, report_dir, args.arrive_seconds), summary


@dataclass
class Search:
    """One search's rungs (room off: Rung, room on: RoomRung) and the profile of the largest
    absorbed sale (else of the last)."""

    rungs: list[Any]
    profile: list[Any]


def write_report(
    args: argparse.Namespace, command: str, off: Search | None, on: Search | None
) -> None:
    lines = ["# The largest spike this machine absorbs", "", f"`{command}`", ""]
    if off is not None:
        lines += off_section(args, off)
    if on is not None:
        lines += on_section(args, on)
    if off is not None and on is not None:
        lines += comparison(args, off, on)
    lines += ["![attempts per second and p99 per spike](search.png)", ""]
    (args.report_dir / "search.md").write_text("\n".join(lines))
    found: dict[str, Any] = {"command": command}
    if off is not None:
        found["rungs"] = [asdict(r) for r in off.rungs]
    if on is not None:
        found["room_rungs"] = [asdict(r) for r in on.rungs]
        found["room"] = room_settings(args)
    (args.report_dir / "search.json").write_text(json.dumps(found, indent=2) + "\n")
    chart(args.report_dir / "search.png", off.rungs if off else [], on.rungs if on else [])


def room_settings(args: argparse.Namespace) -> dict[str, int]:
    return {
        "admit_per_second": args.admit_per_second,
        "max_active": args.max_active,
        "admission_seconds": args.admission_seconds,
    }


def off_section(args: argparse.Namespace, off: Search) -> list[str]:
    rungs: list[Rung] = off.rungs
    lines = [
        "## Room off",
        "",
        f"Each row is a whole sale (`loadtests.run_flash_sale`, buyers only, delivery chaos on) "
        f"of {args.stock} units: every buyer arrives within {args.arrive_seconds:g} s and "
        f"retries a sold-out answer every 1-3 s for up to {args.patience:g} s; the sale runs "
        f"{args.seconds} s. Locust ({args.locust_processes} process(es)), the service "
        f"({args.workers} workers), Redis, MongoDB and the Stripe simulator share the machine's "
        "2 cores. CPU is the mean over the sale in percent of one core (the machine: of 200 %).",
        "",
        "| buyers | all arrived after s | absorbed | reserve attempts | attempts/s "
        "| reserve p99 ms "
        "| sold-out p99 ms | failed requests | paid / stock | verifier "
        "| Locust CPU mean / peak | service CPU | machine CPU | of it not this run |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.buyers:,} | {r.arrived_seconds:g} | {verdict(r.absorbed, r.on_time)} | "
        f"{r.attempts:,} | "
        f"{r.attempts_per_second:,.0f} | {r.reserve_p99_ms:,.0f} | {r.sold_out_p99_ms:,.0f} | "
        f"{r.failed:,} | {r.paid} / {r.stock} | {'green' if r.verifier else '**red**'} | "
        f"{r.locust_cpu:.0f} % / {r.locust_cpu_peak:.0f} % | {r.service_cpu:.0f} % | "
        f"{r.machine_cpu:.0f} % | {r.others_cpu:.0f} % |"
        for r in rungs
    ]
    absorbed = [rung for rung in rungs if rung.absorbed]
    if absorbed:
        best = absorbed[-1]
        lines += [
            "",
            f"Largest spike absorbed without the room: **{best.buyers:,} buyers** within "
            f"{args.arrive_seconds:g} s, {best.attempts_per_second:,.0f} reserve attempts "
            "answered per second over the sale, 0 oversold.",
        ]
    return [*lines, "", *profile_lines(off.profile), ""]


def on_section(args: argparse.Namespace, on: Search) -> list[str]:
    rungs: list[RoomRung] = on.rungs
    lines = [
        "## Room on",
        "",
        f"The same sale with the hot SKU behind a waiting room (admit_per_second "
        f"{args.admit_per_second}, max_active {args.max_active}, admission_seconds "
        f"{args.admission_seconds}) whose sale starts once the crowd has arrived: every buyer "
        f"(the `fair-start` scenario, {args.locust_processes} Locust process(es)) joins within "
        f"{args.arrive_seconds:g} s, polls its ticket after exactly the `poll_after_ms` it was "
        "told, and once admitted holds with its token (retrying while sold out), tries the "
        "used token once more (it must be refused), checks out and pays; `sold_out` ends its "
        f"try. The sale runs {args.room_seconds} s.",
        "",
        *room_table(args, rungs),
    ]
    absorbed = [rung for rung in rungs if rung.absorbed]
    if absorbed:
        best = absorbed[-1]
        lines += [
            "",
            f"Largest spike absorbed with the room: **{best.buyers:,} buyers** within "
            f"{args.arrive_seconds:g} s ({best.joins:,} joins, {best.polls:,} polls, "
            f"{best.requests_per_second:,.0f} requests/s over the sale), 0 oversold.",
        ]
    return [*lines, "", *profile_lines(on.profile), ""]


def comparison(args: argparse.Namespace, off: Search, on: Search) -> list[str]:
    best_off = max((r.buyers for r in off.rungs if r.absorbed), default=0)
    best_on = max((r.buyers for r in on.rungs if r.absorbed), default=0)
    ratio = f"{best_on / best_off:.1f} x" if best_off else "n/a"
    return [
        "## Side by side",
        "",
        f"| | largest spike absorbed within {args.arrive_seconds:g} s | against room off |",
        "|---|---:|---:|",
        f"| room off | {best_off:,} | 1 x |",
        f"| room on | {best_on:,} | {ratio} |",
        "",
    ]


def profile_lines(profile: list[Any]) -> list[str]:
    if not profile:
        return []
    lines = ["Where one service worker's time went in that sale (py-spy):", ""]
    lines += ["| owner | share of samples |", "|---|---:|"]
    return lines + [f"| {label} | {share:.1f} % |" for label, share in profile]


def chart(path: Path, rungs: list[Rung], room: list[RoomRung]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rate, latency) = plt.subplots(1, 2, figsize=(10, 4))
    lines: list[tuple[str, list[Any], list[float]]] = [
        ("room off: reserve attempts", rungs, [r.attempts_per_second for r in rungs]),
        ("room on: all requests", room, [r.requests_per_second for r in room]),
    ]
    for label, found, per_second in lines:
        if found:
            buyers = [rung.buyers for rung in found]
            rate.plot(buyers, per_second, marker="o", label=label)
            for rung, value in zip(found, per_second, strict=True):
                if not rung.absorbed:
                    rate.annotate("not absorbed", (rung.buyers, value))
    rate.set(xscale="log", xlabel="buyers in the spike", ylabel="answered / s")
    rate.legend(fontsize=8)
    series = (
        ("room off: reserve", rungs, [r.reserve_p99_ms for r in rungs]),
        ("room off: sold out", rungs, [r.sold_out_p99_ms for r in rungs]),
        ("room on: join", room, [r.join_p99_ms for r in room]),
        ("room on: poll", room, [r.poll_p99_ms for r in room]),
    )
    for label, found, values in series:
        if found:
            latency.plot([r.buyers for r in found], values, marker="o", label=label)
    latency.set(xscale="log", yscale="log", xlabel="buyers in the spike", ylabel="p99 ms")
    latency.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.spike_search", description=__doc__)
    parser.add_argument("--start", type=int, default=2500, help="buyers in the first spike")
    parser.add_argument("--factor", type=float, default=2.0, help="each spike this much larger")
    parser.add_argument("--max", type=int, default=80000, help="stop after this many buyers")
    parser.add_argument("--min", type=int, default=300, help="stop going down below this")
    parser.add_argument("--arrive-seconds", type=float, default=10.0)
    parser.add_argument("--patience", type=float, default=40.0)
    parser.add_argument("--seconds", type=int, default=60, help="each sale's length (<= 150)")
    parser.add_argument("--stock", type=int, default=100)
    parser.add_argument("--hold-seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--locust-processes", type=int, default=1, help="in every sale")
    parser.add_argument(
        "--locust-nice", type=int, default=10, help="Locust's niceness in every sale (0: none)"
    )
    parser.add_argument(
        "--stack-nice",
        type=int,
        default=0,
        help="every sale's processes at this niceness, Locust's added to it (run_flash_sale's)",
    )
    parser.add_argument("--report-dir", type=Path, default=DOCS)
    add_room_options(parser)
    args = parser.parse_args(argv)
    if args.start < 1 or args.factor <= 1 or not 5 <= args.seconds <= 150:
        parser.error("--start >= 1, --factor > 1, 5 <= --seconds <= 150")
    if args.room_seconds is None:
        args.room_seconds = args.seconds
    return args


def add_room_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--waiting-room",
        choices=("off", "on", "both"),
        default="off",
        help="search without the room (off), with it (on), or both in one run",
    )
    parser.add_argument(
        "--room-start",
        type=int,
        default=0,
        help="buyers in the first spike with the room (0: 4 x the largest absorbed without, "
        "else 10,000)",
    )
    parser.add_argument("--room-seconds", type=int, default=None, help="default: --seconds")
    parser.add_argument("--admit-per-second", type=int, default=20)
    parser.add_argument("--max-active", type=int, default=100)
    parser.add_argument("--admission-seconds", type=int, default=120)


def search(args: argparse.Namespace, start: int, run: Any, report: Any) -> Search:
    """Up by --factor while spikes are absorbed; when the first is not, down by it instead
    until one is (or --min is reached): either way the rungs bracket the largest absorbed
    spike. `run(args, buyers)` runs one sale; `report(found)` writes what is known so far."""
    found = Search([], [])
    buyers = start
    going_up: bool | None = None
    while args.min <= buyers <= args.max:
        rung, summary = run(args, buyers)
        found.rungs.append(rung)
        if rung.absorbed or not found.profile:
            found.profile = summary["profile"]
        report(found)
        if going_up is None:
            going_up = rung.absorbed
        if rung.absorbed != going_up:
            break
        buyers = int(buyers * args.factor) if going_up else int(buyers / args.factor)
    found.rungs.sort(key=lambda rung: rung.buyers)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return search_all(parse_args(argv), argv)
    except KeyboardInterrupt:
        print("interrupted: the search stopped with the sale it was running", file=sys.stderr)
        return 130


def search_all(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """The searches --waiting-room asks for, and their report."""
    command = "python -m loadtests.spike_search " + shlex.join(
        sys.argv[1:] if argv is None else list(argv)
    )
    args.report_dir.mkdir(parents=True, exist_ok=True)
    off: Search | None = None
    on: Search | None = None
    if args.waiting_room in ("off", "both"):
        off = search(args, args.start, run_rung, lambda s: write_report(args, command, s, None))
    if args.waiting_room in ("on", "both"):
        best_off = max((r.buyers for r in off.rungs if r.absorbed), default=0) if off else 0
        start = args.room_start or (4 * best_off if best_off else 10_000)
        on = search(args, start, run_room_rung, lambda s: write_report(args, command, off, s))
    write_report(args, command, off, on)
    for rung in [*(off.rungs if off else []), *(on.rungs if on else [])]:
        print(rung)
    searches = [found for found in (off, on) if found is not None]
    return 0 if all(any(r.absorbed for r in found.rungs) for found in searches) else 1


if __name__ == "__main__":
    sys.exit(main())
