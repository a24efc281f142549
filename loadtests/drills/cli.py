"""The command `python -m loadtests.drills`: its options, the sale every drill runs, each drill
in turn (a JSON line each), then the report; non-zero when a drill did not pass."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import loadtests.drills
from loadtests import chaos_compare
from loadtests.drills.outcome import Outcome
from loadtests.drills.registry import DRILLS
from loadtests.drills.report import write_report
from loadtests.drills.runner import run_drill


def main(argv: Sequence[str] | None = None) -> int:
    """Run the drills `--only` names (all by default) and report them."""
    args = parse_args(argv)
    command = " ".join(
        ["python -m loadtests.drills", shlex.join(sys.argv[1:] if argv is None else list(argv))]
    ).strip()
    outcomes = []
    for name in args.only:
        outcome = run_one(name, args)
        outcome.command = command
        print(json.dumps(asdict(outcome)), flush=True)
        outcomes.append(outcome)
    if not args.no_report:
        print("report:", write_report(outcomes))
    return 0 if all(o.passed for o in outcomes) else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command's options; its help is the package's docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.drills", description=loadtests.drills.__doc__
    )
    parser.add_argument("--only", nargs="*", choices=sorted(DRILLS), default=sorted(DRILLS))
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--fault-at", type=float, default=12.0, help="seconds into the sale")
    parser.add_argument(
        "--purchases",
        type=int,
        default=chaos_compare.PURCHASES,
        help="purchases of chaos-vs-clean (each made in both runs)",
    )
    parser.add_argument("--no-report", action="store_true", help="print, write no docs")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep each drill's logs and Locust CSVs here"
    )
    return parser.parse_args(argv)


def run_one(name: str, args: argparse.Namespace) -> Outcome:
    """One drill: in a Locust sale of the command's size, or by itself."""
    drill = DRILLS[name]
    if drill.run is not None:
        return drill.run(args)
    return run_drill(drill, sale_argv(args), args.fault_at, args.keep)


def sale_argv(args: argparse.Namespace) -> list[str]:
    """The options of the sale (loadtests.run_flash_sale's) every drill in a sale starts from."""
    return [
        *("--users", str(args.users), "--seconds", str(args.seconds)),
        *("--stock", "50", "--skus", "0", "--hold-seconds", "10", "--sweep-seconds", "2"),
        *("--spike-seconds", "10", "--leave-seconds", "0", "--patience", "15"),
        *("--tags", "buyers"),
        # The probe asks 10 times a second from one address: no rate limit in a drill.
        *("--rate-limits", "off"),
    ]
