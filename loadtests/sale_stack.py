"""The stack a flash sale runs on: its stores, the Stripe simulator and `reservation serve`,
wired together on free loopback ports; and what is run against it once the sale is over
(drain the webhooks, sweep, verify)."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from redis.crc import key_slot

from harness.customer_tokens import SECRET_VARIABLE, new_secret
from harness.servers import (
    REDIS_SERVER,
    free_port,
    redis_cluster,
    start_redis,
    stop_process,
    wait_for_http,
)
from reservation.stores.embedded import EmbeddedMongo

ROOT = Path(__file__).resolve().parent.parent
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
    customer_token_secret: str = field(default_factory=new_secret, repr=False)
    profile: list[tuple[str, float]] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # loadtests.sale_locust.CpuWatch's
    # The tree the processes run from (their working directory: `python -m` imports from it
    # first); another copy of the project (a planted bug, loadtests/linearizability/plant.py).
    root: Path = ROOT

    def start(self, name: str, argv: Sequence[str], **env: str) -> subprocess.Popen[bytes]:
        """Start a process of the stack in a session of its own, its output in `name`.log."""
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        with log.open("wb") as output:  # the child writes to its own copy of the file
            process = subprocess.Popen(
                list(argv),
                env={**self.env, **env},
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,  # its own process group: stopped with all its children
            )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        """Stop every process, newest first: SIGTERM to its group, SIGKILL after 15 s. The
        whole group: a process that has exited may leave children of its own behind (Locust's
        --processes workers outlive their master), and they go too."""
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
            while _group_alive(process.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    webhook_secret = f"whsec_{secrets.token_hex(16)}"
    stack.env = stack_env(stack, args, redis_url, mongodb_uri, webhook_secret)
    start_simulator(stack, args, sim_port, webhook_secret, sim_args)
    start_service(stack, args, service_port, service_env or {})


def stack_env(
    stack: Stack, args: argparse.Namespace, redis_url: str, mongodb_uri: str, webhook_secret: str
) -> dict[str, str]:
    """The environment every process of the stack shares: stores of this run's own names,
    Stripe at the simulator, the webhook secret both sides know."""
    run_id = secrets.token_hex(4)
    return {
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
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "RESERVATION_SESSION_SECRET": secrets.token_urlsafe(32),
        "PUBLIC_URL": stack.service_url,
        # The shop's secret: the service verifies the buyers' tokens with it, Locust mints them.
        SECRET_VARIABLE: stack.customer_token_secret,
        **rate_limit_env(args.rate_limits),
    }


def start_simulator(
    stack: Stack, args: argparse.Namespace, port: int, webhook_secret: str, sim_args: Sequence[str]
) -> None:
    """The Stripe simulator with the sale's delivery chaos and latency, once it answers."""
    sim = stack.start(
        "stripe-sim",
        [
            *(sys.executable, "-m", "reservation", "stripe-sim", "--port", str(port)),
            *("--webhook-url", f"{stack.service_url}/v1/webhooks/stripe"),
            *("--webhook-secret", webhook_secret),
            *("--duplicate-share", str(args.duplicate_share)),
            *("--delivery-delay", str(args.delivery_delay)),
            *("--latency-ms", *(str(ms) for ms in args.latency_ms)),
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


def start_service(
    stack: Stack, args: argparse.Namespace, port: int, service_env: Mapping[str, str]
) -> None:
    """`reservation serve` with the sale's workers, once it is ready."""
    service = stack.start(
        "service",
        [
            *(sys.executable, "-m", "reservation", "serve"),
            *("--port", str(port), "--workers", str(args.workers)),
        ],
        **service_env,
    )
    wait_for_http(
        f"{stack.service_url}/readyz",
        "the service",
        60,
        exited=service.poll,
        log=stack.logs["service"],
    )


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
    """One `reservation sweep` on the stack's stores; its output line."""
    done = run_module(stack, "reservation", "sweep")
    if done.returncode != 0:
        raise RuntimeError(f"reservation sweep failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def verify(
    stack: Stack,
    locust_stats: Path | None = None,
    waiting_room: bool = False,
    shop_events: Path | None = None,
) -> tuple[bool, str]:
    """The invariant verifier (loadtests.verify) on the stack: passed, and its report; with
    `locust_stats` (the sale's Locust stats CSV), its bots checked too; with `waiting_room`,
    the rooms (from the service's admissions log, read at the stack's own URL); with
    `shop_events` (the shop receiver's record), the waiting lists."""
    more = [] if locust_stats is None else ["--locust-stats", str(locust_stats)]
    if waiting_room:
        more.append("--waiting-room")
    if shop_events is not None:
        more += ["--waitlist", "--shop-events", str(shop_events)]
    done = run_module(stack, "loadtests.verify", *more)
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def run_module(stack: Stack, module: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """`python -m module argv...` in the stack's environment, to its end; its output kept."""
    return subprocess.run(
        [sys.executable, "-m", module, *argv],
        env=stack.env,
        capture_output=True,
        text=True,
        check=False,
        cwd=stack.root,
    )


SERVICE = 1  # the index of `reservation serve` in a Stack's processes (after the simulator)


def service_workers(stack: Stack) -> list[psutil.Process]:
    """The worker processes of the stack's `reservation serve` (uvicorn's supervisor spawns
    them): what the drills and the linearizability runs SIGKILL."""
    supervisor = psutil.Process(stack.processes[SERVICE].pid)
    found = []
    for child in supervisor.children():
        with contextlib.suppress(psutil.Error):
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
    return found
