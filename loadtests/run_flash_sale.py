"""A whole flash sale on one machine, verified: `python -m loadtests.run_flash_sale`.

    python -m loadtests.run_flash_sale [--users N] [--seconds S] [--stock K] [--skus M]
        [--workers W] [--hold-seconds H] [--buyers B] [--spike-seconds R] [--report-dir DIR]

Starts the stack on free loopback ports: Redis (REDIS_URL, else a `redis-server` of its own),
MongoDB (MONGODB_URI, else nx-27017), the Stripe simulator with delivery chaos on (a share of
events delivered twice, late and out of order) and Stripe-like latency, and `reservation serve
--workers W` with webhooks from the simulator and the sweeper on. It creates the products, runs
Locust headless (loadtests/locustfile.py: buyers, a crowd, abandoners, browsers), waits for the
webhooks to drain and every hold to lapse, sweeps, drains again and runs the verifier
(loadtests.verify). It writes Locust's CSV and HTML, flash-sale.json (the numbers), a PNG of
requests/s and p50/p99 per request name over time, and flash-sale.md (the command, the machine,
the sizes, a table per request name, paid orders against stock, refunds, the verifier's
report) to --report-dir (docs/benchmarks by default).

Exits 0 only when the verifier passes and no request failed unexpectedly; every process it
started is stopped on the way out, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis.crc import key_slot

from harness.servers import (
    REDIS_SERVER,
    free_port,
    redis_cluster,
    start_redis,
    stop_process,
    wait_for_http,
)
from loadtests.cpu import process_tree
from loadtests.pyspy import py_spy, record, summarize
from reservation.stores.embedded import EmbeddedMongo

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
STRIPE_KEY = "sk_test_flash_sale"
CLUSTER_MASTERS = 3


@dataclass
class Stack:
    """What one rehearsal started, to be stopped whatever happens."""

    workdir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: dict[str, Path] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    service_url: str = ""
    sim_url: str = ""
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    profile: list[tuple[str, float]] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], **env: str) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        process = subprocess.Popen(
            list(argv),
            env={**self.env, **env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,  # its own process group: stopped with all its children
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextlib.contextmanager
def stores(stack: Stack, cluster: bool) -> Iterator[tuple[str, str]]:
    """Redis and MongoDB URLs: the configured ones, else servers of this run's own (with
    `cluster`, a local 3-master Redis Cluster)."""
    embedded: EmbeddedMongo | None = None
    redis_process = None
    nodes = contextlib.ExitStack()
    try:
        redis_url = None if cluster else os.environ.get("REDIS_URL")
        if cluster:
            ports = nodes.enter_context(redis_cluster(stack.workdir / "cluster", CLUSTER_MASTERS))
            redis_url = f"redis://127.0.0.1:{ports[0]}"
        elif not redis_url:
            if REDIS_SERVER is None:
                raise RuntimeError("set REDIS_URL or install redis-server")
            port = free_port()
            redis_process = start_redis(stack.workdir / "redis", port)
            redis_url = f"redis://127.0.0.1:{port}/0"
        mongodb_uri = os.environ.get("MONGODB_URI")
        if not mongodb_uri:
            embedded = EmbeddedMongo(stack.workdir / "mongo")
            mongodb_uri = embedded.start()
        yield redis_url, mongodb_uri
    finally:
        if embedded is not None:
            embedded.stop()
        if redis_process is not None:
            stop_process(redis_process)
        nodes.close()


def cluster_pools(masters: int = 3) -> list[str]:
    """A pool name for each master of a cluster whose slots are split evenly (as
    harness.servers.redis_cluster splits them): the hot SKU's first, then the others'."""
    step = 16384 // masters
    found: dict[int, str] = {}
    for number in range(10_000):
        name = f"pool-{number}"
        master = min(key_slot(f"{{{name}}}".encode()) // step, masters - 1)
        found.setdefault(master, name)
        if len(found) == masters:
            break
    return [found[master] for master in sorted(found)]


def rate_limit_env(rate_limits: str) -> dict[str, str]:
    """The service's rate limits in a rehearsal. "on": the service's defaults, each Locust user
    counted under the X-Forwarded-For it sends (as a proxy in front of the shop would write it;
    the load comes from one address). "off": no rate limit, no hold cap, and no share of one
    address (every user is 127.0.0.1 then)."""
    if rate_limits == "on":
        return {"RESERVATION_TRUSTED_PROXY_HEADER": "X-Forwarded-For"}
    return {
        "RESERVATION_IP_RATE_LIMIT": "0",
        "RESERVATION_CUSTOMER_RATE_LIMIT": "0",
        "RESERVATION_MAX_HOLDS_PER_CUSTOMER": "0",
        "RESERVATION_MAX_REQUESTS_PER_CLIENT": "0",
        "RESERVATION_MAX_CONNECTIONS_PER_CLIENT": "0",
    }


def start_stack(
    stack: Stack,
    args: argparse.Namespace,
    redis_url: str,
    mongodb_uri: str,
    sim_args: Sequence[str] = (),
    service_env: Mapping[str, str] | None = None,
) -> None:
    """The simulator (`sim_args`: more of its options) and the service (`service_env`: more of
    its environment), wired together."""
    service_port, sim_port = free_port(), free_port()
    stack.service_url = f"http://127.0.0.1:{service_port}"
    stack.sim_url = f"http://127.0.0.1:{sim_port}"
    secret = f"whsec_{secrets.token_hex(16)}"
    run_id = secrets.token_hex(4)
    stack.env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "REDIS_CLUSTER": "1" if args.redis_cluster else "0",
        "MONGODB_URI": mongodb_uri,
        "MONGODB_DATABASE": f"flash_sale_{run_id}",
        "RESERVATION_KEY_PREFIX": f"flash-{run_id}",
        "RESERVATION_ADMIN_TOKEN": stack.admin_token,
        "RESERVATION_HOLD_SECONDS": str(args.hold_seconds),
        "RESERVATION_SWEEP_SECONDS": str(args.sweep_seconds),
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_API_BASE": stack.sim_url,
        "STRIPE_WEBHOOK_SECRET": secret,
        "RESERVATION_SESSION_SECRET": secrets.token_urlsafe(32),
        "PUBLIC_URL": stack.service_url,
        **rate_limit_env(args.rate_limits),
    }
    sim = stack.start(
        "stripe-sim",
        [
            sys.executable,
            "-m",
            "reservation",
            "stripe-sim",
            "--port",
            str(sim_port),
            "--webhook-url",
            f"{stack.service_url}/v1/webhooks/stripe",
            "--webhook-secret",
            secret,
            "--duplicate-share",
            str(args.duplicate_share),
            "--delivery-delay",
            str(args.delivery_delay),
            "--latency-ms",
            *(str(ms) for ms in args.latency_ms),
            *sim_args,
        ],
    )
    wait_for_http(
        f"{stack.sim_url}/_sim/faults",
        "the Stripe simulator",
        60,
        exited=sim.poll,
        log=stack.logs["stripe-sim"],
    )
    service = stack.start(
        "service",
        [
            sys.executable,
            "-m",
            "reservation",
            "serve",
            "--port",
            str(service_port),
            "--workers",
            str(args.workers),
        ],
        **(service_env or {}),
    )
    wait_for_http(
        f"{stack.service_url}/readyz",
        "the service",
        60,
        exited=service.poll,
        log=stack.logs["service"],
    )


def profile_service(stack: Stack, seconds: float, delay: float) -> list[tuple[str, float]]:
    """py-spy on one service worker for `seconds`, `delay` seconds into the sale: the share
    of samples per owner (uvicorn, starlette, redis-py, our code, syscalls ...)."""
    time.sleep(delay)
    service = stack.processes[1]
    worker = process_tree(service.pid)[-1]  # the last worker (the supervisor without workers)
    path = stack.workdir / "service-profile.txt"
    failed = record(py_spy() or "py-spy", worker, int(seconds), 100, path)
    if failed is not None:
        return [("py-spy failed: " + failed[-200:], 0.0)]
    profile = summarize("service", path.read_text())
    return [(label, 100.0 * n / profile.samples) for label, n in profile.owners]


def run_locust(stack: Stack, args: argparse.Namespace, report_dir: Path) -> int:
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        stack.service_url,
        "--users",
        str(args.users),
        "--spawn-rate",
        str(max(1, args.users // 5)),
        "--run-time",
        f"{args.seconds}s",
        "--stop-timeout",
        "30",
        "--csv",
        str(report_dir / "flash-sale"),
        "--csv-full-history",
        "--html",
        str(report_dir / "flash-sale.html"),
        "--only-summary",
        "--sim-url",
        stack.sim_url,
        f"--admin-token={stack.admin_token}",  # a token may start with "-"
        "--stock",
        str(args.stock),
        "--hot-stock",
        str(args.stock),
        "--skus",
        str(args.skus),
        "--buyers",
        str(args.buyers),
        "--spike-seconds",
        str(args.spike_seconds),
        "--leave-seconds",
        str(args.spike_seconds if args.leave_seconds is None else args.leave_seconds),
        "--patience",
        str(args.seconds if args.patience is None else args.patience),
        "--tags",
        *args.tags,
    ]
    if args.locust_processes > 1:
        argv += ["--processes", str(args.locust_processes)]
    if args.redis_cluster:
        hot_pool, *others = cluster_pools(CLUSTER_MASTERS)
        argv += ["--hot-pool", hot_pool, "--pools", ",".join(others)]
    shown = [part.replace(stack.admin_token, "…") for part in argv]
    print("locust:", shlex.join(shown[2:]), flush=True)
    # Every new buyer opens a connection; gevent's default resolver hands each lookup of the
    # (literal) loopback address to a thread and back. Resolved in the loop, it costs nothing.
    # On a machine it shares with the service, Locust yields the CPU to it (--locust-nice):
    # the sale's processes wait less behind the load generator in the run queue. Locust's own
    # timings still include any wait of its own to be scheduled.
    niced = ["nice", "-n", str(args.locust_nice)] if args.locust_nice else []
    locust = stack.start("locust", [*niced, *argv], GEVENT_RESOLVER="block")
    if args.profile_seconds:
        stack.profile = profile_service(stack, args.profile_seconds, args.spike_seconds + 5)
    return locust.wait()


def drain(stack: Stack, quiet_seconds: float = 2.0, timeout: float = 120.0) -> int:
    """Wait until every event the simulator made was delivered (or has stopped trying);
    the number of events still undelivered."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=stack.sim_url, timeout=30) as http:
        while True:
            events = {event["id"] for event in http.get("/_sim/events").json()["data"]}
            deliveries = http.get("/_sim/deliveries").json()["data"]
            delivered = {d["event_id"] for d in deliveries if d["ok"]}
            missing = events - delivered
            if not missing or time.monotonic() > deadline:
                return len(missing)
            time.sleep(quiet_seconds)


def sweep(stack: Stack) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "reservation", "sweep"],
        env=stack.env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"reservation sweep failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def verify(stack: Stack) -> tuple[bool, str]:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.verify"],
        env=stack.env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    return done.returncode == 0, (done.stdout + done.stderr).strip()


# -- the report --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NameRow:
    name: str
    method: str
    requests: int
    failures: int
    per_second: float
    p50: float
    p99: float


def locust_rows(report_dir: Path) -> list[NameRow]:
    path = report_dir / "flash-sale_stats.csv"
    if not path.exists():
        return []
    with path.open() as handle:
        return [
            NameRow(
                row["Name"],
                row["Type"],
                int(row["Request Count"]),
                int(row["Failure Count"]),
                float(row["Requests/s"]),
                float(row["50%"] or 0),
                float(row["99%"] or 0),
            )
            for row in csv.DictReader(handle)
        ]


def sale_totals(stack: Stack) -> dict[str, int]:
    """Orders by status and the refunds made, read from the service and the simulator."""
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    totals: dict[str, int] = {}
    with httpx.Client(base_url=stack.service_url, headers=headers, timeout=30) as http:
        for status in ("paid", "awaiting_payment", "payment_failed", "refunded_oversold"):
            found = http.get("/v1/orders", params={"status": status, "limit": 1000}).json()
            totals[f"orders {status}"] = len(found["data"])
        products = http.get("/v1/products").json()["data"]
    totals["units sold"] = sum(product["sold"] for product in products)
    totals["units on sale"] = sum(product["stock"] for product in products)
    with httpx.Client(base_url=stack.sim_url, timeout=30) as http:
        made = {"method": "POST", "path": "/v1/refunds"}
        totals["refund requests"] = len(http.get("/_sim/requests", params=made).json()["data"])
        stripe_auth = {"Authorization": f"Bearer {STRIPE_KEY}"}
        totals["refunds made"] = len(http.get("/v1/refunds", headers=stripe_auth).json()["data"])
        events = http.get("/_sim/events").json()["data"]
        deliveries = http.get("/_sim/deliveries").json()["data"]
    totals["events"] = len(events)
    totals["deliveries"] = len(deliveries)
    return totals


def webhook_rates(stack: Stack) -> dict[str, float]:
    """Paid orders the webhooks wrote into MongoDB (peak per second, over their span), and the
    floor: plain inserts into the same MongoDB from one process, one at a time, for 3 s."""
    from datetime import datetime

    import pymongo

    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    with httpx.Client(base_url=stack.service_url, headers=headers, timeout=30) as http:
        paid = http.get("/v1/orders", params={"status": "paid", "limit": 1000}).json()["data"]
    times = sorted(datetime.fromisoformat(order["created_at"]).timestamp() for order in paid)
    peak = max((sum(1 for t in times if start <= t < start + 1) for start in times), default=0)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(stack.env["MONGODB_URI"])
    try:
        scratch = client[stack.env["MONGODB_DATABASE"] + "_floor"]["inserts"]
        inserted, started = 0, time.perf_counter()
        while time.perf_counter() - started < 3.0:
            scratch.insert_one({"n": inserted, "payload": "x" * 200})
            inserted += 1
        floor = inserted / (time.perf_counter() - started)
        client.drop_database(scratch.database.name)
    finally:
        client.close()
    return {
        "paid orders written, peak per second": float(peak),
        "paid orders written, per second over their span": len(times) / span if span else 0.0,
        "floor: plain inserts per second, one process": floor,
    }


def chart(report_dir: Path) -> Path | None:
    """Requests/s and p50/p99 over time per request name, from Locust's history CSV."""
    history = report_dir / "flash-sale_stats_history.csv"
    if not history.exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[float, float, float, float]]] = {}
    with history.open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated" or row["50%"] in ("N/A", ""):
                continue
            series.setdefault(row["Name"], []).append(
                (
                    float(row["Timestamp"]),
                    float(row["Requests/s"]),
                    float(row["50%"]),
                    float(row["99%"]),
                )
            )
    if not series:
        return None
    busiest = sorted(series, key=lambda name: -sum(p[1] for p in series[name]))[:5]
    start = min(points[0][0] for points in series.values())
    figure, (rate, latency) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name, points in sorted(series.items()):
        seconds = [p[0] - start for p in points]
        rate.plot(seconds, [p[1] for p in points], label=name)
        if name in busiest:  # latency of the five busiest names, to keep the chart readable
            (line,) = latency.plot(seconds, [max(p[2], 0.5) for p in points], label=f"{name} p50")
            latency.plot(
                seconds,
                [max(p[3], 0.5) for p in points],
                linestyle="--",
                color=line.get_color(),
                label=f"{name} p99",
            )
    rate.set_ylabel("requests/s")
    rate.legend(fontsize=7, ncol=2)
    latency.set_ylabel("ms")
    latency.set_yscale("log")
    latency.set_xlabel("seconds into the sale")
    latency.legend(fontsize=7, ncol=2)
    figure.suptitle("Flash sale under Locust: rate and latency per request name")
    figure.tight_layout()
    path = report_dir / "flash-sale.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_markdown(
    report_dir: Path,
    command: str,
    args: argparse.Namespace,
    rows: list[NameRow],
    totals: dict[str, int],
    rates: dict[str, float],
    profile: list[tuple[str, float]],
    verifier: str,
    undelivered: int,
) -> Path:
    lines = [
        "# Flash sale rehearsal",
        "",
        f"`{command}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; Locust ({args.locust_processes} process(es), nice "
        f"{args.locust_nice}), the service ({args.workers} workers), Redis, MongoDB and the "
        "simulator all share it.",
        "",
        f"Sizes: {args.users} users over {args.seconds} s (arriving within "
        f"{args.spike_seconds} s; a buyer tries for up to "
        f"{args.seconds if args.patience is None else args.patience} s), "
        f"{args.stock} units of the hot SKU and of each of {args.skus} others, holds of "
        f"{args.hold_seconds} s, delivery chaos: {args.duplicate_share:.0%} duplicated, delays up "
        f"to {args.delivery_delay} s, Stripe latency {args.latency_ms[0]}-{args.latency_ms[1]} ms.",
        "",
        "| request | requests | failures | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {row.name} | {row.requests:,} | {row.failures} | {row.per_second:,.1f} | "
        f"{row.p50:,.0f} | {row.p99:,.0f} |"
        for row in rows
    ]
    lines += ["", "| the sale | count |", "|---|---:|"]
    lines += [f"| {name} | {value:,} |" for name, value in totals.items()]
    lines += ["", "| webhooks into MongoDB | per second |", "|---|---:|"]
    lines += [f"| {name} | {value:,.1f} |" for name, value in rates.items()]
    if profile:
        lines += ["", "Where one service worker's time went during the sale (py-spy):", ""]
        lines += ["| owner | share of samples |", "|---|---:|"]
        lines += [f"| {label} | {share:.1f} % |" for label, share in profile]
    lines += [
        "",
        f"Events not delivered when the verifier ran: {undelivered}.",
        "",
        "```",
        verifier,
        "```",
        "",
        "![rate and latency](flash-sale.png)",
        "",
    ]
    path = report_dir / "flash-sale.md"
    path.write_text("\n".join(lines))
    return path


# -- the command -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.run_flash_sale", description=__doc__)
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
    parser.add_argument("--duplicate-share", type=float, default=0.1)
    parser.add_argument("--delivery-delay", type=float, default=3.0)
    parser.add_argument(
        "--latency-ms", type=int, nargs=2, default=(200, 600), metavar=("MIN", "MAX")
    )
    parser.add_argument(
        "--tags",
        nargs="+",
        default=["buyers", "abandoners", "browsers"],
        help="Locust scenarios (crowd, shoppers, buyers, abandoners, browsers)",
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
        "--rate-limits",
        choices=("on", "off"),
        default="on",
        help="on: the service's rate limits and hold cap, each Locust user limited under its own"
        " X-Forwarded-For address; off: none (default: on)",
    )
    parser.add_argument("--report-dir", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    if args.users < 1 or args.seconds < 5 or args.stock < 1 or args.workers < 1:
        parser.error("--users >= 1, --seconds >= 5, --stock >= 1, --workers >= 1")
    return args


def rehearse(args: argparse.Namespace, command: str) -> int:
    report_dir: Path = args.report_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="flash-sale-") as temp:
        stack = Stack(Path(temp))
        try:
            with stores(stack, args.redis_cluster) as (redis_url, mongodb_uri):
                try:
                    start_stack(stack, args, redis_url, mongodb_uri)
                    locust_code = run_locust(stack, args, report_dir)
                    # Every hold made during the sale lapses (or was paid) before the final
                    # sweep, so none can lapse between the sweep and the verifier.
                    time.sleep(args.hold_seconds + 1)
                    drain(stack)
                    print("sweep:", sweep(stack), flush=True)
                    undelivered = drain(stack)
                    passed, report = verify(stack)
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
    path = write_markdown(
        report_dir, command, args, rows, totals, rates, stack.profile, report, undelivered
    )
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
    }
    (report_dir / "flash-sale.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(report)
    print(f"requests failed unexpectedly: {failures}; Locust exited {locust_code}; report {path}")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
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
