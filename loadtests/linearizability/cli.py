"""The command `python -m loadtests.linearizability [ci|record|check|plant]`.

- `ci` (the default): a clean run, runs under faults, and a run of each planted bug, each
  recorded on a stack of its own and checked; non-zero unless every clean and faulted run is
  linearizable and every planted bug is found. `--seconds 120 --faults all` is the long run
  docs/reliability.md reports.
- `record`: one run (`--fault NAME`), its history and initial.json in `--report-dir`;
  `--check` checks it too.
- `check HISTORY [--initial initial.json]`: the checker's verdict on a written history.
- `plant --bug a|b|c|all`: runs of a copy of the tree with each bug planted; each must fail.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from loadtests.linearizability.faults import FAULTS, NO_FAULT
from loadtests.linearizability.plant import BUGS
from loadtests.linearizability.recorder import INITIAL, RunOptions, record
from loadtests.linearizability.runs import (
    Checked,
    check_files,
    report,
    run_fault,
    run_plant,
    write_summary,
)

CI_FAULTS = ("worker-killed", "redis-restart")
BUDGET_SECONDS = 60.0  # per pool


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.command == "check":
        return check_command(args)
    if args.command == "record":
        return record_command(args)
    runs: list[tuple[str, str]] = []
    if args.command == "ci":
        faults = sorted(FAULTS) if args.faults == ["all"] else args.faults
        runs += [("fault", name) for name in ["none", *faults]]
    bugs = sorted(BUGS) if args.bugs == ["all"] else args.bugs
    runs += [("plant", letter) for letter in bugs]
    return run_all(args, runs)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.linearizability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command")
    ci = commands.add_parser("ci", help="clean, faulted and planted runs, each checked")
    _run_options(ci, seconds=10.0)
    ci.add_argument(
        "--faults",
        nargs="*",
        default=list(CI_FAULTS),
        choices=["all", *sorted(FAULTS)],
        help="faults to run under (besides the clean run)",
    )
    ci.add_argument("--bugs", nargs="*", default=["all"], choices=["all", *sorted(BUGS)])
    one = commands.add_parser("record", help="one recorded run")
    _run_options(one, seconds=10.0)
    one.add_argument("--fault", default="none", choices=["none", *sorted(FAULTS)])
    one.add_argument("--check", action="store_true", help="check the history too")
    plant = commands.add_parser("plant", help="runs of the tree with a planted bug")
    _run_options(plant, seconds=10.0)
    plant.add_argument("--bug", dest="bugs", nargs="+", default=["all"], choices=["all", *BUGS])
    checking = commands.add_parser("check", help="check a written history")
    checking.add_argument("history", type=Path)
    checking.add_argument("--initial", type=Path, help="default: initial.json beside it")
    checking.add_argument("--budget", type=float, default=BUDGET_SECONDS, help="s per pool")
    checking.add_argument("--soldout-window", type=float, help="default: the checker's")
    checking.add_argument("--read-window", type=float, help="default: the checker's")
    if not argv or argv[0] not in (*commands.choices, "-h", "--help"):
        argv = ["ci", *argv]  # the default command, with its options
    return parser.parse_args(argv)


def _run_options(parser: argparse.ArgumentParser, seconds: float) -> None:
    parser.add_argument("--seconds", type=float, default=seconds, help="of each recording")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rate",
        type=float,
        default=RunOptions.rate,
        help="the crowd's calls per second (0: no pacing)",
    )
    parser.add_argument("--budget", type=float, default=BUDGET_SECONDS, help="s per pool")
    parser.add_argument(
        "--report-dir", type=Path, default=None, help="histories here (default: a temp dir)"
    )


def _options(args: argparse.Namespace) -> RunOptions:
    report_dir = args.report_dir or Path(tempfile.mkdtemp(prefix="linearizability-"))
    return RunOptions(
        report_dir=report_dir,
        seconds=args.seconds,
        clients=args.clients,
        seed=args.seed,
        rate=args.rate,
    )


def run_all(args: argparse.Namespace, runs: list[tuple[str, str]]) -> int:
    """Each run in turn, its report printed as it ends; the summary written at the end."""
    started = time.monotonic()
    options = _options(args)
    checked: list[Checked] = []
    for what, name in runs:
        if what == "fault":
            one = run_fault(name, options, args.budget)
        else:
            one = run_plant(name, options, args.budget)
        print(report(one), flush=True)
        checked.append(one)
    seconds = time.monotonic() - started
    summary = options.report_dir / "summary.json"
    write_summary(summary, checked, seconds)
    failed = [c.name for c in checked if not c.passed]
    verdict = f"NOT AS THEY MUST BE: {', '.join(failed)}" if failed else "all as they must be"
    print(f"linearizability runs: {len(checked)} in {seconds:.0f} s, {verdict}; {summary}")
    return 1 if failed else 0


def record_command(args: argparse.Namespace) -> int:
    fault = NO_FAULT if args.fault == "none" else FAULTS[args.fault]
    run = record(replace(_options(args), fault=fault))
    print(f"{run.operations} operations in {run.seconds:.0f} s ({run.fault}): {run.history}")
    if not args.check:
        return 0
    verdict, seconds = check_files(run.history, run.initial, args.budget)
    print(verdict.text())
    print(f"checked in {seconds:.1f} s")
    return 0 if verdict.ok else 1


def check_command(args: argparse.Namespace) -> int:
    initial_path = args.initial or args.history.parent / INITIAL
    verdict, seconds = check_files(
        args.history,
        initial_path,
        args.budget,
        soldout_window=args.soldout_window,
        read_window=args.read_window,
    )
    print(verdict.text())
    print(f"checked in {seconds:.1f} s")
    return 0 if verdict.ok else 1
