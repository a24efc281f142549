"""The largest spike this machine absorbs: `python -m loadtests.spike_search`.

    python -m loadtests.spike_search [--start 2500] [--factor 2] [--max 80000] [--min 300]
        [--arrive-seconds 10] [--patience 40] [--seconds 60] [--stock 100]

Runs whole flash sales (loadtests.run_flash_sale, buyers only, delivery chaos on) with more
buyers each time, all arriving within --arrive-seconds, each retrying a sold-out answer every
1-3 s for up to --patience s. A spike is absorbed when the sale ends within the run (at most
150 s) with every request answered, every webhook delivered and the verifier green: nothing
oversold, every paid session one order, no hold left behind. The search grows the spike until
one is not absorbed; when the first is not, it shrinks it until one is. It writes search.md,
search.json and search.png, and each sale's own report in a folder per size, under
--report-dir (docs/benchmarks/spike by default).
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

DOCS = run_flash_sale.DOCS / "spike"
RESERVE_NAMES = ("reserve", "reserve: sold out")


@dataclass(frozen=True, slots=True)
class Rung:
    buyers: int
    absorbed: bool
    attempts: int
    attempts_per_second: float
    reserve_p99_ms: float
    sold_out_p99_ms: float
    failed: int
    paid: int
    stock: int
    verifier: bool
    undelivered: int


def rung_of(buyers: int, stock: int, summary: dict[str, Any]) -> Rung:
    rows = {row["name"]: row for row in summary["rows"]}
    reserve = [rows[name] for name in RESERVE_NAMES if name in rows]
    return Rung(
        buyers=buyers,
        absorbed=bool(summary["passed"]),
        attempts=sum(row["requests"] for row in reserve),
        attempts_per_second=sum(row["per_second"] for row in reserve),
        reserve_p99_ms=rows.get("reserve", {}).get("p99", 0.0),
        sold_out_p99_ms=rows.get("reserve: sold out", {}).get("p99", 0.0),
        failed=int(summary["requests_failed"]),
        paid=int(summary["totals"].get("orders paid", 0)),
        stock=stock,
        verifier=bool(summary["verifier_passed"]),
        undelivered=int(summary["undelivered"]),
    )


def run_rung(args: argparse.Namespace, buyers: int) -> tuple[Rung, dict[str, Any]]:
    report_dir: Path = args.report_dir / f"buyers-{buyers}"
    argv = [
        *("--users", str(buyers), "--buyers", str(buyers), "--tags", "buyers"),
        *("--stock", str(args.stock), "--skus", "0", "--seconds", str(args.seconds)),
        *("--spike-seconds", str(args.arrive_seconds), "--leave-seconds", "0"),
        *("--patience", str(args.patience), "--hold-seconds", str(args.hold_seconds)),
        *("--workers", str(args.workers), "--profile-seconds", str(args.profile_seconds)),
        *("--report-dir", str(report_dir)),
    ]
    print(f"\n=== {buyers:,} buyers within {args.arrive_seconds:g} s ===", flush=True)
    run_flash_sale.main(argv)
    summary: dict[str, Any] = json.loads((report_dir / "flash-sale.json").read_text())
    return rung_of(buyers, args.stock, summary), summary


def write_report(
    args: argparse.Namespace, command: str, rungs: list[Rung], profile: list[Any]
) -> None:
    absorbed = [rung for rung in rungs if rung.absorbed]
    lines = [
        "# The largest spike this machine absorbs",
        "",
        f"`{command}`",
        "",
        f"Each row is a whole sale (`loadtests.run_flash_sale`, buyers only, delivery chaos on) "
        f"of {args.stock} units: every buyer arrives within {args.arrive_seconds:g} s and "
        f"retries a sold-out answer every 1-3 s for up to {args.patience:g} s; the sale runs "
        f"{args.seconds} s. Locust, the service ({args.workers} workers), Redis, MongoDB and "
        "the Stripe simulator share the machine's 2 cores.",
        "",
        "| buyers | absorbed | reserve attempts | attempts/s | reserve p99 ms "
        "| sold-out p99 ms | failed requests | paid / stock | verifier |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.buyers:,} | {'yes' if r.absorbed else '**no**'} | {r.attempts:,} | "
        f"{r.attempts_per_second:,.0f} | {r.reserve_p99_ms:,.0f} | {r.sold_out_p99_ms:,.0f} | "
        f"{r.failed:,} | {r.paid} / {r.stock} | {'green' if r.verifier else '**red**'} |"
        for r in rungs
    ]
    if absorbed:
        best = absorbed[-1]
        lines += [
            "",
            f"Largest spike absorbed: **{best.buyers:,} buyers** within "
            f"{args.arrive_seconds:g} s, {best.attempts_per_second:,.0f} reserve attempts "
            "answered per second over the sale, 0 oversold.",
        ]
    if profile:
        lines += ["", "Where one service worker's time went in that sale (py-spy):", ""]
        lines += ["| owner | share of samples |", "|---|---:|"]
        lines += [f"| {label} | {share:.1f} % |" for label, share in profile]
    lines += ["", "![attempts per second and p99 per spike](search.png)", ""]
    (args.report_dir / "search.md").write_text("\n".join(lines))
    (args.report_dir / "search.json").write_text(
        json.dumps({"command": command, "rungs": [asdict(r) for r in rungs]}, indent=2) + "\n"
    )
    chart(args.report_dir / "search.png", rungs)


def chart(path: Path, rungs: list[Rung]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rate, latency) = plt.subplots(1, 2, figsize=(10, 4))
    buyers = [rung.buyers for rung in rungs]
    rate.plot(buyers, [rung.attempts_per_second for rung in rungs], marker="o")
    rate.set(xscale="log", xlabel="buyers in the spike", ylabel="reserve attempts answered / s")
    latency.plot(buyers, [rung.reserve_p99_ms for rung in rungs], marker="o", label="reserve")
    latency.plot(
        buyers, [rung.sold_out_p99_ms for rung in rungs], marker="o", label="reserve: sold out"
    )
    latency.set(xscale="log", yscale="log", xlabel="buyers in the spike", ylabel="p99 ms")
    latency.legend()
    for rung in rungs:
        if not rung.absorbed:
            rate.annotate("not absorbed", (rung.buyers, rung.attempts_per_second))
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
    parser.add_argument("--report-dir", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    if args.start < 1 or args.factor <= 1 or not 5 <= args.seconds <= 150:
        parser.error("--start >= 1, --factor > 1, 5 <= --seconds <= 150")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m loadtests.spike_search " + shlex.join(
        sys.argv[1:] if argv is None else list(argv)
    )
    args.report_dir.mkdir(parents=True, exist_ok=True)
    rungs: list[Rung] = []
    profile: list[Any] = []
    buyers = args.start
    # Up by --factor while spikes are absorbed; when the first is not, down by it instead until
    # one is (or --min is reached): either way the table brackets the largest absorbed spike.
    going_up: bool | None = None
    while args.min <= buyers <= args.max:
        rung, summary = run_rung(args, buyers)
        rungs.append(rung)
        write_report(args, command, rungs, profile)
        if going_up is None:
            going_up = rung.absorbed
        if rung.absorbed:
            profile = summary["profile"]
        if rung.absorbed != going_up:
            break
        buyers = int(buyers * args.factor) if going_up else int(buyers / args.factor)
    rungs.sort(key=lambda rung: rung.buyers)
    write_report(args, command, rungs, profile)
    for rung in rungs:
        print(rung)
    return 0 if any(rung.absorbed for rung in rungs) else 1


if __name__ == "__main__":
    sys.exit(main())
