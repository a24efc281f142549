"""A whole flash sale on one machine, verified: `python -m loadtests.run_flash_sale`.

    python -m loadtests.run_flash_sale [--users N] [--seconds S] [--stock K] [--skus M]
        [--workers W] [--hold-seconds H] [--buyers B] [--spike-seconds R] [--report-dir DIR]
        [--waiting-room [--admit-per-second N] [--max-active N] [--admission-seconds N]
         [--start-in SECONDS]] [--waitlist [--offer-seconds N]]

Starts the stack on free loopback ports: Redis (REDIS_URL, else a `redis-server` of its own),
MongoDB (MONGODB_URI, else nx-27017), the Stripe simulator with delivery chaos on (a share of
events delivered twice, late and out of order) and Stripe-like latency, and `reservation serve
--workers W` with webhooks from the simulator, the sweeper on and customer tokens verified with
a secret of the run's (RESERVATION_CUSTOMER_TOKEN_SECRET). It creates the products, runs Locust
headless (loadtests/locustfile.py: buyers with tokens of their own, a crowd, abandoners,
browsers, and bots whose every attempt must be refused), waits for the webhooks to drain and
every hold to lapse, sweeps, drains again and runs the verifier (loadtests.verify, the bots
included). It writes Locust's CSV and HTML, flash-sale.json (the numbers), a PNG of
requests/s and p50/p99 per request name over time, and flash-sale.md (the command, the machine,
the sizes, a table per request name, paid orders against stock, refunds, the verifier's
report) to --report-dir (docs/benchmarks by default).

With --waiting-room every SKU is created with a waiting room (--admit-per-second, --max-active,
--admission-seconds) and a sale start --start-in seconds after Locust starts (default: the
crowd's arrival window, --spike-seconds, and the second of arrival jitter after it, so the
whole crowd joins before the start); the scenarios default to `fair-start` (the crowd waits in
the room, polls as told, buys when admitted), `browsers` and `bots`, and the verifier checks the
room too from its admissions log (loadtests/verify_room.py).

With --waitlist the scenario is `waitlist` (loadtests/locust_waitlist.py): a first wave of
--stock buyers sells the hot SKU out, waiters join its waiting list and take, give back or let
lapse the offers the returning units become (RESERVATION_OFFER_SECONDS --offer-seconds), a
public crowd keeps asking. The service's shop webhooks go to a receiver of the run's
(loadtests/shop_receiver.py); once Locust is done the operator closes the lines, every hold and
offer lapses, every event is delivered, and the verifier checks the lines too
(loadtests/verify_waitlist.py) against what the receiver got.

Exits 0 only when the verifier passes and no request failed unexpectedly; every process it
started is stopped on the way out, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadtests.sale_locust import locust_rows, run_locust
from loadtests.sale_report import chart, sale_totals, webhook_rates, write_markdown
from loadtests.sale_stack import ROOT, Stack, drain, start_stack, stores, sweep, verify
from loadtests.waitlist_stack import close_lines, record_path, start_receiver, wait_delivered

DOCS = ROOT / "docs" / "benchmarks"
SALE_TAGS = ["buyers", "abandoners", "browsers", "bots"]
ROOM_TAGS = ["fair-start", "browsers", "bots"]
WAITLIST_TAGS = ["waitlist"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The rehearsal's options (drills and the chaos comparison build theirs with it too)."""
    parser = argparse.ArgumentParser(prog="python -m loadtests.run_flash_sale", description=__doc__)
    add_sale_options(parser)
    add_simulation_options(parser)
    add_run_options(parser)
    add_room_options(parser)
    args = parser.parse_args(argv)
    if args.tags is None:
        args.tags = ROOM_TAGS if args.waiting_room else SALE_TAGS
        args.tags = WAITLIST_TAGS if args.waitlist else args.tags
    if args.waitlist and args.offer_seconds < 1:
        parser.error("--offer-seconds >= 1")
    if args.start_in is None:
        args.start_in = args.spike_seconds + 1.0
    if min(args.admit_per_second, args.max_active, args.admission_seconds) < 1:
        parser.error("--admit-per-second, --max-active and --admission-seconds are >= 1")
    if args.users < 1 or args.seconds < 5 or args.stock < 1 or args.workers < 1:
        parser.error("--users >= 1, --seconds >= 5, --stock >= 1, --workers >= 1")
    return args


def add_sale_options(parser: argparse.ArgumentParser) -> None:
    """The sale's sizes, and how its users arrive, leave and wait."""
    parser.add_argument("--users", type=int, default=200, help="Locust users at the peak")
    parser.add_argument("--seconds", type=int, default=60, help="how long the sale runs")
    parser.add_argument("--stock", type=int, default=100, help="units of each SKU")
    parser.add_argument("--skus", type=int, default=5, help="SKUs besides the hot one")
    parser.add_argument("--workers", type=int, default=2, help="service worker processes")
    parser.add_argument("--hold-seconds", type=float, default=30.0, help="how long a hold lives")
    parser.add_argument("--sweep-seconds", type=float, default=5.0, help="the service's sweeper")
    parser.add_argument(
        "--buyers", type=int, default=0, help="buyers among the users (0: by class weight)"
    )
    parser.add_argument("--spike-seconds", type=float, default=3.0, help="the crowd arrives within")
    parser.add_argument(
        "--leave-seconds",
        type=float,
        default=None,
        help="the crowd leaves over the sale's last this long (default: --spike-seconds; 0: stay)",
    )
    parser.add_argument(
        "--patience",
        type=float,
        default=None,
        help="how long a buyer keeps trying while sold out (default: --seconds)",
    )


def add_simulation_options(parser: argparse.ArgumentParser) -> None:
    """Stripe's delivery chaos and latency, the scenarios, the Redis topology, the profile."""
    parser.add_argument("--duplicate-share", type=float, default=0.1)
    parser.add_argument("--delivery-delay", type=float, default=3.0)
    parser.add_argument(
        "--latency-ms", type=int, nargs=2, default=(200, 600), metavar=("MIN", "MAX")
    )
    parser.add_argument(
        "--tags",
        nargs="+",
        default=None,
        help="Locust scenarios (crowd, shoppers, buyers, abandoners, browsers, bots: a"
        " scalper's, every attempt of which the service must refuse; fair-start: a crowd in the"
        f" waiting room); default: {' '.join(SALE_TAGS)}, with --waiting-room"
        f" {' '.join(ROOM_TAGS)}",
    )
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="a local 3-master Redis Cluster, the SKUs' pools on different masters",
    )
    parser.add_argument(
        "--profile-seconds",
        type=float,
        default=0.0,
        help="py-spy one service worker this long, once the crowd has arrived (0: no)",
    )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """How Locust shares the machine, the service's rate limits, where the report goes."""
    parser.add_argument(
        "--locust-processes",
        type=int,
        default=1,
        help="Locust load processes (its --processes): one gevent loop saturates near 600 "
        "requests/s of new buyers, and then its own queue is what its latencies measure",
    )
    parser.add_argument(
        "--locust-nice",
        type=int,
        default=10,
        help="Locust's niceness: on a shared machine the service, Redis and the stores come "
        "first (0: the same priority)",
    )
    parser.add_argument(
        "--stack-nice",
        type=int,
        default=0,
        help="the niceness this rehearsal and all it starts (Redis, MongoDB, the simulator, the"
        " service, Locust) run at; Locust's --locust-nice is added to it. On a machine others use"
        " too, e.g. --stack-nice -5 --locust-nice 5: the sale's processes come first, Locust as"
        " the others (a negative value needs the right to raise priority)",
    )
    parser.add_argument(
        "--rate-limits",
        choices=("on", "off"),
        default="on",
        help="on: the service's rate limits and hold cap, each Locust user limited under its own"
        " X-Forwarded-For address; off: none (default: on)",
    )
    parser.add_argument("--report-dir", type=Path, default=DOCS)


def add_room_options(parser: argparse.ArgumentParser) -> None:
    """The waiting room every SKU gets with --waiting-room, and the sale's start."""
    parser.add_argument(
        "--waiting-room",
        action="store_true",
        help="every SKU behind a waiting room, the sale starting after the crowd has joined",
    )
    parser.add_argument("--admit-per-second", type=int, default=20, help="the room's rate")
    parser.add_argument("--max-active", type=int, default=100, help="live admissions at most")
    parser.add_argument(
        "--admission-seconds", type=int, default=120, help="how long an admission lasts"
    )
    parser.add_argument(
        "--start-in",
        type=float,
        default=None,
        help="the sale starts this long after Locust starts (default: --spike-seconds + 1)",
    )
    parser.add_argument(
        "--waitlist",
        action="store_true",
        help="the waitlist scenario: the hot SKU sells out, buyers line up for what comes back",
    )
    parser.add_argument(
        "--offer-seconds", type=int, default=6, help="RESERVATION_OFFER_SECONDS of --waitlist"
    )


def rehearse(args: argparse.Namespace, command: str) -> int:
    """One whole sale on a stack of its own, verified, and its report; 0 when it passed."""
    report_dir: Path = args.report_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    if args.stack_nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.stack_nice)  # inherited by all it starts
    with tempfile.TemporaryDirectory(prefix="flash-sale-") as temp:
        stack = Stack(Path(temp))
        try:
            with stores(stack, args.redis_cluster) as (redis_url, mongodb_uri):
                try:
                    env = start_receiver(stack, args) if args.waitlist else {}
                    start_stack(stack, args, redis_url, mongodb_uri, service_env=env)
                    locust_code = run_locust(stack, args, report_dir)
                    close_lines(stack, args.waitlist)
                    # Every hold (and offer) made during the sale lapses (or was paid) before
                    # the final sweep, so none can lapse between the sweep and the verifier.
                    time.sleep(max(args.hold_seconds, args.waitlist * args.offer_seconds) + 1)
                    drain(stack)
                    print("sweep:", sweep(stack), flush=True)
                    undelivered = drain(stack) + wait_delivered(stack, args.waitlist)
                    record = record_path(stack) if args.waitlist else None
                    stats = report_dir / "flash-sale_stats.csv"
                    passed, report = verify(stack, stats, args.waiting_room, record)
                    rows = locust_rows(report_dir)
                    totals = sale_totals(stack)
                    rates = webhook_rates(stack)
                finally:
                    stack.stop()
        except BaseException:
            for name, log in stack.logs.items():
                with contextlib.suppress(OSError):
                    tail = log.read_text(errors="replace")[-2000:]
                    print(f"--- {name} (last lines) ---\n{tail}", file=sys.stderr)
            raise
    failures = sum(row.failures for row in rows if row.name != "Aggregated")
    chart(report_dir)
    markdown = (rows, totals, rates, stack.profile, report, undelivered, stack.cpu)
    path = write_markdown(report_dir, command, args, *markdown)
    ok = passed and failures == 0 and undelivered == 0 and locust_code == 0
    summary = {
        "command": command,
        "passed": ok,
        "verifier_passed": passed,
        "requests_failed": failures,
        "undelivered": undelivered,
        "locust_exit": locust_code,
        "rows": [asdict(row) for row in rows],
        "totals": totals,
        "webhook_rates": rates,
        "profile": stack.profile,
        "cpu": stack.cpu,
    }
    (report_dir / "flash-sale.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(report)
    print(f"requests failed unexpectedly: {failures}; Locust exited {locust_code}; report {path}")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """The command: a rehearsal that SIGTERM and Ctrl-C stop cleanly (exit 130)."""
    args = parse_args(argv)
    command = "python -m loadtests.run_flash_sale " + shlex.join(
        sys.argv[1:] if argv is None else list(argv)
    )

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds through every `finally`: nothing is left running

    signal.signal(signal.SIGTERM, interrupted)
    try:
        return rehearse(args, command)
    except KeyboardInterrupt:
        print("interrupted: every process of the rehearsal was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
