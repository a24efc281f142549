"""Fault drills under load: `python -m loadtests.drills [--only NAME ...] [--quick]`.

Each drill starts a stack of its own on free loopback ports (a redis-server, an nx-27017, the
Stripe simulator with delivery chaos, the service with 2 workers; never the machine's Redis),
runs a flash sale under Locust (buyers who pay, decline, cancel), injects its fault while the
sale runs, lets the system recover, then drains the webhooks, sweeps and runs the invariant
verifier. Beside Locust, a probe asks for a hold every 100 ms and times every answer, which
gives the longest answer during the fault and the time to recover.

Drills:
- `redis-lost`: Redis killed, down for a few seconds, restarted *empty*. Requests answer 503
  meanwhile; the service notices and rebuilds its counters from MongoDB by itself.
- `redis-restart`: Redis restarted with its data (AOF), then FUNCTION FLUSH: no request fails.
- `mongodb-stopped`: MongoDB stopped for a few seconds while webhooks arrive: they answer 5xx,
  the simulator delivers them again, reserves keep working; every paid session ends with
  exactly one order.
- `worker-killed`: one of the 2 API workers SIGKILLed three times, 4 s apart, while Stripe
  answers in 0.3-0.9 s (so checkouts are half made when it dies), each kill just after a burst
  of oversold payments (so webhooks are waiting on their refunds): the supervisor starts a new
  one, cut-off webhooks are delivered again, and the sessions of checkouts the dead worker never
  recorded are recorded (and expired once their hold is gone) by the sweeper from the attempt
  each checkout writes ahead.
- `stripe-failing`: during a checkout rush (buyers arrive all sale long, browsers read products)
  Stripe answers in 2.5 s, then 500s, then 429s, then not at all, 4 s each. A checkout probe
  must get 201 or 503 with Retry-After within the gate's bound (5 s here); reserve and product
  p99 must stay within 2x those of the same sale without the fault, run first on its own stack.
- `clock-skew`: the service runs with its clock 4 minutes ahead (libfaketime, Debian's
  `faketime`), and a second service on the same stores 4 minutes behind: holds made by either
  expire when Redis's clock says, read the same through both, and Stripe's deliveries (within
  the 5-minute signature tolerance) still land.
- `chaos-vs-clean`: no Locust sale. One seeded plan of purchases (pay, refunds in full or in
  part, declines, expiries, releases, delayed payments) is made twice, each on a fresh stack:
  with clean delivery, then with 10 % of the events delivered twice and every delivery delayed
  up to 5 s (shuffled). Both verifiers must be green and the two final states, compared buyer by
  buyer, equal (loadtests/chaos_compare.py).

It writes docs/reliability.md (one table: drill, load, fault, outcome) and
docs/reliability.json, and exits non-zero when a drill's outcome is not the expected one. A run
of some drills (`--only`) replaces their rows and keeps the others'.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import random
import re
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import psutil
import redis

from harness.servers import RedisServer, free_port, wait_for_http
from loadtests import chaos_compare
from loadtests.run_flash_sale import (
    NameRow,
    Stack,
    drain,
    locust_rows,
    parse_args,
    run_locust,
    start_stack,
    sweep,
    verify,
)
from reservation.stores.embedded import EmbeddedMongo

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PROBE_EVERY = 0.1
# An answer slower than this during a fault is an unbounded one.
ANSWER_BOUND_SECONDS = 5.0
# Stripe redelivers a failed webhook for three days; the simulator, by default, for about a
# second. In a drill it keeps trying as Stripe would, over minutes: an outage must not lose
# an event (an event never delivered fails the drill).
PATIENT_DELIVERY = ("--webhook-attempts", "12", "--webhook-retry-seconds", "0.25")
SERVICE = 1  # the index of `reservation serve` in the Stack's processes (after the simulator)
KILLS = 3
BASELINE_FACTOR = 2.0
# Stripe's faults during the checkout rush, each for PHASE_SECONDS: answers that take seconds,
# 500s, 429s, then no answer at all.
STRIPE_PHASES: tuple[tuple[str, float | None], ...] = (
    ("delay", 2.5),
    ("500", None),
    ("429", None),
    ("hang", 30.0),
)
PHASE_SECONDS = 4.0
SKEW_SECONDS = 240
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
STRIPE_BOUND = 5.0  # the drill's STRIPE_TIMEOUT_SECONDS: the longest a checkout may wait
KILL_EVERY = 4.0
BURST = 15  # oversold sessions paid at once before each kill
BURST_SKU = "burst"
CHECKOUTS = 8  # checkouts made just before each kill


@dataclass
class Probe:
    """Asks for one unit of the hot SKU every PROBE_EVERY seconds; keeps (at, status, took)."""

    url: str
    answers: list[tuple[float, int, float]] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stopped.is_set():
                started = time.monotonic()
                try:
                    status = http.post(
                        "/v1/reservations", json={"items": [{"sku": "hot", "quantity": 1}]}
                    ).status_code
                except httpx.HTTPError:
                    status = 0
                self.answers.append((started, status, time.monotonic() - started))
                self.stopped.wait(PROBE_EVERY)

    def during(self, start: float, end: float) -> list[tuple[float, int, float]]:
        return [answer for answer in self.answers if start <= answer[0] <= end]


@dataclass
class Stores:
    """The drill's own Redis and MongoDB, which the faults stop and start."""

    redis: RedisServer
    mongo: EmbeddedMongo


@dataclass
class Target:
    """What a fault acts on and watches: the stores, the service's processes, the probe."""

    stores: Stores
    stack: Stack
    probe: Probe
    workers: int
    problems: list[str] = field(default_factory=list)  # what the fault saw go wrong
    cut_checkouts: int = 0  # the fault's own checkouts that got no answer (worker-killed)


@dataclass
class Outcome:
    drill: str
    fault: str
    load: str
    passed: bool
    oversold: int
    verifier_passed: bool
    verifier: str
    failed_requests: int
    unexpected_failures: int
    undelivered_events: int
    max_answer_seconds: float
    recovery_seconds: float | None
    notes: list[str] = field(default_factory=list)
    # Webhook deliveries that got no answer (their worker died or the service was down), and
    # Checkout Sessions the sweeper recorded for checkouts that never recorded them.
    webhook_deliveries_cut_off: int = 0
    sessions_recovered: int = 0
    checkouts_cut_off: int = 0  # the drill's own checkouts a killed worker never answered
    # Drills judged against a sale with no fault: p99 in ms per request name, without and with.
    p99_ms_without_and_with_fault: dict[str, list[float | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # What a drill that judges lost or doubled orders itself found (empty: the verifier says).
    lost_or_doubled: str = ""
    # The command that made this row (rows of reports older than this field: the plain one).
    command: str = "python -m loadtests.drills"


@dataclass
class Drill:
    name: str
    fault: str
    redis_args: tuple[str, ...]
    inject: Callable[[Target], tuple[float, float, float | None]]
    # Locust failures that this fault makes expected (a 503 while a store is down).
    expected_failure: Callable[[str], bool]
    # More environment for the service, more options for the simulator.
    service_env: dict[str, str] = field(default_factory=dict)
    sim_args: tuple[str, ...] = ()
    # More options for the sale, given its seconds.
    sale_args: Callable[[int], tuple[str, ...]] = lambda seconds: ()
    # Request names whose p99 with the fault must stay within BASELINE_FACTOR x the p99 of the
    # same sale without it, run first on a stack of its own (none: no such sale).
    baseline: tuple[str, ...] = ()
    # How long after the sale its last sweep waits, besides the holds' lapse.
    settle_seconds: float = 0.0
    # A drill that is not a fault in a Locust sale runs itself (given the command's arguments).
    run: Callable[[argparse.Namespace], Outcome] | None = None


def _outage(
    stop: Callable[[], None], start: Callable[[], object], seconds: float
) -> tuple[float, float]:
    """Stop a store, keep it down `seconds`, start it again: when it went down and came back."""
    began = time.monotonic()
    stop()
    time.sleep(seconds)
    start()
    return began, time.monotonic()


def _redis_lost(target: Target) -> tuple[float, float, float | None]:
    """Kill Redis, keep it down 3 s, start it again empty; (fault start, end, recovered)."""
    redis_server = target.stores.redis
    began, back = _outage(redis_server.stop, redis_server.start, 3)
    return began, back, _first_answer_after(target.probe, back, ok=(201, 409))


def _redis_restart(target: Target) -> tuple[float, float, float | None]:
    """Restart Redis with its data (AOF), then flush its functions (the scripts' library)."""
    began = time.monotonic()
    target.stores.redis.restart()  # SIGTERM: the AOF is complete
    time.sleep(2)
    client = redis.Redis.from_url(target.stores.redis.url)
    try:
        client.function_flush()
    finally:
        client.close()
    end = time.monotonic()
    return began, end, _first_answer_after(target.probe, began, ok=(201, 409))


def _mongodb_stopped(target: Target) -> tuple[float, float, float | None]:
    """Stop MongoDB for 5 s while webhooks arrive, then start it again (same data)."""
    mongo = target.stores.mongo
    began, back = _outage(mongo.stop, mongo.start, 5)
    # What must not stop is the hold: every probe answer during the fault was a hold or a
    # sold-out answer (recovery 0), else the drill did not hold.
    during = target.probe.during(began, back)
    refused = [status for _, status, _ in during if status not in (201, 409)]
    return began, back, None if refused else 0.0


def _workers(target: Target) -> list[psutil.Process]:
    """The service's worker processes (uvicorn's supervisor spawns them)."""
    supervisor = psutil.Process(target.stack.processes[SERVICE].pid)
    found = []
    for child in supervisor.children():
        with contextlib.suppress(psutil.Error):
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
    return found


def _clients(worker: psutil.Process, port: int) -> int:
    """The client connections a worker has open on the service's port."""
    with contextlib.suppress(psutil.Error):
        return sum(
            1
            for c in worker.net_connections("tcp")
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
        )
    return 0


def _serving(worker: psutil.Process, redis_port: int) -> bool:
    """A worker has started (its start-up opened its Redis connections)."""
    with contextlib.suppress(psutil.Error):
        return any(
            c.raddr and c.raddr.port == redis_port and c.status == psutil.CONN_ESTABLISHED
            for c in worker.net_connections("tcp")
        )
    return False


def _workers_killed(target: Target) -> tuple[float, float, float | None]:
    """SIGKILL one API worker, three times, 4 s apart, while buyers reserve, check out and pay
    (Stripe answers slowly in this drill, so checkouts are half made); (first kill, last kill,
    seconds until the supervisor's replacement serves).

    Each kill comes just after a burst of payments whose holds lapsed while their stock went
    to others: every one of those webhooks is an oversold late payment that asks the slow
    Stripe for a refund, so webhooks are being handled, between the order and its refund,
    when the worker dies. Their redeliveries must end in one refund and one order each."""
    sessions = _oversold_sessions(target, KILLS * BURST)
    began = time.monotonic()
    killed: set[int] = set()
    for round_ in range(KILLS):
        if round_:
            time.sleep(KILL_EVERY)
        _pay(target.stack.sim_url, sessions[round_ * BURST : (round_ + 1) * BURST])
        time.sleep(random.uniform(0.2, 1.2))  # deliveries land over the simulator's delays
        with ThreadPoolExecutor(CHECKOUTS) as pool:
            # Checkouts on fresh connections (the kernel spreads them over the workers), each
            # waiting 0.3-0.9 s for Stripe when the kill comes.
            answers = [
                pool.submit(_checkout, target.stack.service_url, "hot") for _ in range(CHECKOUTS)
            ]
            time.sleep(0.3)
            # The worker with the most open client connections: the simulator's deliveries
            # come over a few kept-alive connections, which the kernel may have given one.
            port = int(target.stack.service_url.rsplit(":", 1)[1])
            victim = max(_workers(target), key=lambda worker: _clients(worker, port))
            victim.send_signal(signal.SIGKILL)
            killed.add(victim.pid)
            target.cut_checkouts += sum(1 for answer in answers if answer.result() is None)
    last = time.monotonic()
    deadline = last + 60
    while time.monotonic() < deadline:
        fresh = [w for w in _workers(target) if w.pid not in killed]
        if len(fresh) >= target.workers and all(
            _serving(w, target.stores.redis.port) for w in fresh
        ):
            return began, last, time.monotonic() - last
        time.sleep(0.1)
    return began, last, None


def _oversold_sessions(target: Target, count: int) -> list[str]:
    """`count` open Checkout Sessions of one unit of a SKU of their own ("burst"), whose holds
    have lapsed and whose units another reservation holds now: paying one is oversold."""
    stack = target.stack
    admin = {"Authorization": f"Bearer {stack.admin_token}"}
    with httpx.Client(base_url=stack.service_url, timeout=30) as http:
        product = {"name": "Burst", "price": 1500, "currency": "eur", "stock": count}
        http.put(f"/v1/products/{BURST_SKU}", json=product, headers=admin).raise_for_status()

    with ThreadPoolExecutor(16) as pool:
        found = pool.map(lambda _: _checkout(stack.service_url, BURST_SKU), range(count))
        sessions = [session for session in found if session]
    with httpx.Client(base_url=stack.service_url, timeout=30) as http:
        while http.get(f"/v1/products/{BURST_SKU}").json()["available"] < count:
            time.sleep(0.5)  # the holds lapse
        taken = {"items": [{"sku": BURST_SKU, "quantity": count}]}
        http.post("/v1/reservations", json=taken).raise_for_status()
    return sessions


def _checkout(service_url: str, sku: str) -> str | None:
    """A Checkout Session of one unit of `sku`: its id, or None (refused, or no answer)."""
    try:
        with httpx.Client(base_url=service_url, timeout=30) as http:
            answer = http.post("/v1/checkout", json={"items": [{"sku": sku, "quantity": 1}]})
    except httpx.HTTPError:
        return None
    return str(answer.json()["checkout_session_id"]) if answer.status_code == 201 else None


def _pay(sim_url: str, sessions: Sequence[str]) -> None:
    """Pay these sessions on the simulator, at once: their webhooks come in a burst."""

    def pay(session: str) -> None:
        with httpx.Client(base_url=sim_url, timeout=30) as http:
            http.post(f"/_sim/sessions/{session}/complete", json={"payment_status": "paid"})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(pay, sessions))


@dataclass
class CheckoutProbe:
    """Checks out one unit every 0.5 s, one at a time; keeps (at, status, retry-after, took)."""

    url: str
    answers: list[tuple[float, int, str | None, float]] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        body = {"items": [{"sku": "hot", "quantity": 1}]}
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self.stopped.is_set():
                started = time.monotonic()
                try:
                    answer = http.post("/v1/checkout", json=body)
                    status, retry_after = answer.status_code, answer.headers.get("retry-after")
                except httpx.HTTPError:
                    status, retry_after = 0, None
                self.answers.append((started, status, retry_after, time.monotonic() - started))
                self.stopped.wait(0.5)


def _stripe_failing(target: Target) -> tuple[float, float, float | None]:
    """Stripe slow, then 500s, then 429s, then silent, during a checkout rush; (fault start,
    end, seconds until a checkout succeeded again). Every checkout meanwhile must be a 201 or
    a 503 with Retry-After, within the gate's bound."""
    probe = CheckoutProbe(target.stack.service_url)
    checker = threading.Thread(target=probe.run, daemon=True)
    checker.start()
    began = time.monotonic()
    with httpx.Client(base_url=target.stack.sim_url, timeout=30) as sim:
        for mode, seconds in STRIPE_PHASES:
            sim.delete("/_sim/faults").raise_for_status()
            fault: dict[str, object] = {
                "path": "/v1/checkout/sessions",
                "method": "POST",
                "mode": mode,
                "count": None,
            }
            if seconds is not None:
                fault["seconds"] = seconds
            sim.post("/_sim/faults", json=fault).raise_for_status()
            time.sleep(PHASE_SECONDS)
        sim.delete("/_sim/faults").raise_for_status()
    ended = time.monotonic()
    recovered = None
    deadline = ended + 30
    while recovered is None and time.monotonic() < deadline:
        recovered = next(
            (
                at + took - ended
                for at, status, _, took in list(probe.answers)
                if at >= ended and status == 201
            ),
            None,
        )
        time.sleep(0.1)
    probe.stopped.set()
    checker.join()
    for at, status, retry_after, took in probe.answers:
        if not began <= at <= ended:
            continue
        if status not in (201, 503) or (status == 503 and not retry_after):
            target.problems.append(
                f"a checkout during the fault answered {status} (Retry-After {retry_after!r})"
            )
        if took > STRIPE_BOUND + 2:
            target.problems.append(f"a checkout during the fault took {took:.1f} s")
    refused = sum(1 for at, status, _, _ in probe.answers if began <= at <= ended and status == 503)
    if not refused:
        target.problems.append("no checkout was refused: the fault did not bite")
    return began, ended, recovered


def _skewed(offset: str) -> dict[str, str]:
    """The environment that runs a process with its clock `offset` (e.g. "+4m") from the
    machine's (libfaketime; Debian's `faketime` package)."""
    return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def _clock_skewed(target: Target) -> tuple[float, float, float | None]:
    """The sale's service runs 4 minutes ahead; a second service on the same stores runs 4
    minutes behind. Holds made by either end when Redis's clock says, for both."""
    began = time.monotonic()
    if not LIBFAKETIME.exists():
        target.problems.append(f"{LIBFAKETIME} is missing: apt-get install faketime")
        return began, began, None
    port = free_port()
    behind = target.stack.start(
        "service-behind",
        [sys.executable, "-m", "reservation", "serve", "--port", str(port)],
        **_skewed("-4m"),
    )
    behind_url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{behind_url}/readyz", "the service 4 minutes behind", 60, exited=behind.poll)
    client = redis.Redis.from_url(target.stores.redis.url)
    hold = float(target.stack.env["RESERVATION_HOLD_SECONDS"])
    try:
        urls = {"ahead": target.stack.service_url, "behind": behind_url}
        made: list[tuple[str, str, float]] = []  # (maker, reservation id, expiry by its answer)
        with httpx.Client(timeout=30) as http:
            for maker, url in urls.items():
                seconds, micros = client.time()
                redis_now = seconds + micros / 1e6
                answer = http.post(
                    f"{url}/v1/reservations", json={"items": [{"sku": "hot", "quantity": 1}]}
                )
                if answer.status_code != 201:
                    target.problems.append(f"a hold from the service {maker}: {answer.status_code}")
                    continue
                # uvicorn's Date header is the worker's clock: the skew is really there.
                skew = parsedate_to_datetime(answer.headers["date"]).timestamp() - time.time()
                if abs(abs(skew) - SKEW_SECONDS) > 5:
                    target.problems.append(f"the service {maker} is {skew:+.0f} s off, not 4 min")
                expires = datetime.fromisoformat(answer.json()["expires_at"]).timestamp()
                if abs(expires - redis_now - hold) > 2:
                    target.problems.append(
                        f"a hold made {maker} expires {expires - redis_now:.1f} s after Redis's"
                        f" now, not {hold:g} s"
                    )
                made.append((maker, answer.json()["id"], expires))
            _statuses(http, urls, made, "held", target.problems)
            last = max((expires for _, _, expires in made), default=0.0)
            while True:
                seconds, micros = client.time()
                if seconds + micros / 1e6 > last + 0.5:
                    break
                time.sleep(0.2)
            _statuses(http, urls, made, "expired", target.problems)
    finally:
        client.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(behind.pid, signal.SIGTERM)
        behind.wait(timeout=30)
    ended = time.monotonic()
    return began, ended, 0.0 if not target.problems else None


def _statuses(
    http: httpx.Client,
    urls: dict[str, str],
    made: Sequence[tuple[str, str, float]],
    wanted: str,
    problems: list[str],
) -> None:
    """Every hold in `made`, read through every service, has the status `wanted`."""
    for maker, reservation_id, _ in made:
        for reader, url in urls.items():
            status = http.get(f"{url}/v1/reservations/{reservation_id}").json().get("status")
            if status != wanted:
                problems.append(f"a hold made {maker}, read {reader}: {status}, not {wanted}")


def _runs_itself(target: Target) -> tuple[float, float, float | None]:
    """The `inject` of a drill with its own `run`: it is never called."""
    raise NotImplementedError("this drill runs itself, not in a Locust sale")


def _chaos_vs_clean(args: argparse.Namespace) -> Outcome:
    """The same purchases with clean delivery, then with chaos; equal ends or a failure."""
    keep = None if args.keep is None else args.keep / "chaos-vs-clean"
    found = chaos_compare.chaos_vs_clean(args.purchases, keep=keep, sim_args=PATIENT_DELIVERY)
    purchases = len(found.plan.purchases)
    return Outcome(
        drill="chaos-vs-clean",
        fault=chaos_compare.fault(purchases),
        load=found.load,
        passed=found.passed,
        oversold=found.oversold,
        verifier_passed=found.verified,
        verifier=found.verifier,
        failed_requests=sum(found.failures.values()),
        unexpected_failures=sum(found.failures.values()),
        undelivered_events=found.undelivered,
        max_answer_seconds=round(found.chaos.drive.slowest_seconds, 3),
        recovery_seconds=round(found.chaos.settle_seconds, 2),
        notes=[f"{n}x {message[:120]}" for message, n in sorted(found.failures.items())],
        webhook_deliveries_cut_off=found.chaos.deliveries.cut_off,
        lost_or_doubled=found.lost_or_doubled,
    )


def _first_answer_after(probe: Probe, since: float, ok: tuple[int, ...]) -> float | None:
    """Seconds from `since` until the probe got an `ok` answer again (None: never, in 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for at, status, took in list(probe.answers):
            if at >= since and status in ok:
                return at + took - since
        time.sleep(0.05)
    return None


def _is_503(message: str) -> bool:
    """Locust's failure message, e.g. "CatchResponseError('503: {...}')"."""
    return "('503: " in message or message.startswith("503: ")


def _checkout_503(message: str) -> bool:
    """A checkout refused while Stripe failed: 503 payment_provider_unavailable."""
    return _is_503(message) and "payment_provider_unavailable" in message


def _cut_off(message: str) -> bool:
    """A request whose worker was killed under it: no answer at all (status 0), e.g.
    `CatchResponseError("0: no answer (RemoteDisconnected(...))")`."""
    return "0: no answer" in message


DRILLS = {
    "redis-lost": Drill(
        "redis-lost",
        "Redis killed, 3 s down, restarted empty",
        (),
        _redis_lost,
        _is_503,
    ),
    "redis-restart": Drill(
        "redis-restart",
        "Redis restarted with its data (AOF), then FUNCTION FLUSH",
        ("--appendonly", "yes", "--appendfsync", "always"),
        _redis_restart,
        lambda message: False,
    ),
    "mongodb-stopped": Drill(
        "mongodb-stopped",
        "MongoDB stopped for 5 s during webhook load",
        (),
        _mongodb_stopped,
        _is_503,
    ),
    "worker-killed": Drill(
        "worker-killed",
        f"one of 2 API workers SIGKILLed, {KILLS} times {KILL_EVERY:g} s apart",
        (),
        _workers_killed,
        _cut_off,
        # The gate's bound: a checkout attempt its killed worker left is the sweeper's after
        # this + 10 s, within the drill. No sweep until the end: it would expire the sessions
        # of the lapsed holds the drill pays.
        {"STRIPE_TIMEOUT_SECONDS": "5", "RESERVATION_SWEEP_SECONDS": "600"},
        # Stripe answers in 0.3-0.9 s, so a kill finds checkouts half made.
        ("--latency-ms", "300", "900"),
        # Stock for the buyers (and the probe's holds).
        sale_args=lambda seconds: ("--stock", "1000"),
        # The last sweep must find the attempts of the last kill older than the gate's bound
        # (5 s) + 10 s, or it leaves them (and their sessions) for a later sweep.
        settle_seconds=10.0,
    ),
    "stripe-failing": Drill(
        "stripe-failing",
        "Stripe during a checkout rush: 2.5 s answers, 500s, 429s, then silent,"
        f" {PHASE_SECONDS:g} s each",
        (),
        _stripe_failing,
        _checkout_503,
        {"STRIPE_TIMEOUT_SECONDS": f"{STRIPE_BOUND:g}"},
        # Buyers keep arriving all sale long, with stock for all, and browsers read products.
        sale_args=lambda seconds: (
            "--stock",
            "3000",
            "--spike-seconds",
            str(seconds),
            "--patience",
            str(seconds),
            "--tags",
            "buyers",
            "browsers",
        ),
        baseline=("reserve", "product"),
    ),
    "clock-skew": Drill(
        "clock-skew",
        "the service's clock 4 min ahead; a second service 4 min behind on the same stores",
        (),
        _clock_skewed,
        lambda message: False,
        _skewed("+4m"),
        # Stock for every buyer and the checks' own holds.
        sale_args=lambda seconds: ("--stock", "1000"),
    ),
    "chaos-vs-clean": Drill(
        "chaos-vs-clean",
        chaos_compare.fault(chaos_compare.PURCHASES),
        (),
        _runs_itself,
        lambda message: False,
        run=_chaos_vs_clean,
    ),
}


@contextlib.contextmanager
def own_stores(workdir: Path, redis_args: tuple[str, ...]) -> Iterator[Stores]:
    stores = Stores(RedisServer(workdir / "redis", *redis_args), EmbeddedMongo(workdir / "mongo"))
    try:
        stores.redis.start()
        stores.mongo.start()
        yield stores
    finally:
        stores.mongo.stop()
        stores.redis.stop()


def _deliveries_cut_off(stack: Stack) -> int:
    with httpx.Client(base_url=stack.sim_url, timeout=30) as http:
        deliveries = http.get("/_sim/deliveries").json()["data"]
    return sum(1 for delivery in deliveries if delivery["status"] is None)


def _recovered_by(swept: str) -> int:
    """The sessions `reservation sweep` recovered, from its one line of output."""
    found = re.search(r"(\d+) unrecorded sessions recovered", swept)
    return int(found.group(1)) if found else 0


def _count_in(log: Path, text: str) -> int:
    with log.open(errors="replace") as handle:
        return sum(text in line for line in handle)


def failures_by_message(report_dir: Path) -> dict[str, int]:
    path = report_dir / "flash-sale_failures.csv"
    if not path.exists():
        return {}
    with path.open() as handle:
        found: dict[str, int] = {}
        for row in csv.DictReader(handle):
            found[row["Error"]] = found.get(row["Error"], 0) + int(row["Occurrences"])
        return found


@dataclass
class SaleRun:
    """What one sale of a drill gave: Locust's rows and failures, the probe, the fault's
    timings, and what the verifier and the simulator said after it."""

    rows: list[NameRow]
    failures: dict[str, int]
    probe: Probe
    timings: tuple[float, float, float | None] | None
    problems: list[str]
    verified: bool
    report: str
    undelivered: int
    cut_deliveries: int
    recovered_sessions: int
    cut_checkouts: int


def run_sale(
    drill: Drill,
    sale: argparse.Namespace,
    workdir: Path,
    fault_at: float | None,
) -> SaleRun:
    """One sale on a stack of its own; the drill's fault `fault_at` seconds in (None: none)."""
    stack = Stack(workdir)
    report_dir = workdir / "report"
    report_dir.mkdir(parents=True)
    timings: list[tuple[float, float, float | None]] = []
    with own_stores(workdir, drill.redis_args) as stores:
        try:
            start_stack(
                stack,
                sale,
                stores.redis.url,
                stores.mongo.uri,
                (*PATIENT_DELIVERY, *drill.sim_args),
                drill.service_env,
            )
            probe = Probe(stack.service_url)
            target = Target(stores, stack, probe, sale.workers)
            prober = threading.Thread(target=probe.run, daemon=True)

            def fault() -> None:
                if fault_at is not None:
                    time.sleep(fault_at)
                    timings.append(drill.inject(target))

            injector = threading.Thread(target=fault, daemon=True)
            prober.start()
            injector.start()
            run_locust(stack, sale, report_dir)
            injector.join()
            probe.stopped.set()
            prober.join()
            time.sleep(sale.hold_seconds + 1 + drill.settle_seconds)
            drain(stack)
            swept = sweep(stack)
            undelivered = drain(stack)
            passed, report = verify(stack)
            cut_deliveries = _deliveries_cut_off(stack)
        finally:
            stack.stop()
    return SaleRun(
        rows=locust_rows(report_dir),
        failures=failures_by_message(report_dir),
        probe=probe,
        timings=timings[0] if timings else None,
        problems=target.problems,
        cut_checkouts=target.cut_checkouts,
        verified=passed,
        report=report,
        undelivered=undelivered,
        cut_deliveries=cut_deliveries,
        recovered_sessions=_count_in(stack.logs["service"], "recovered Checkout Session")
        + _recovered_by(swept),
    )


def _p99(rows: Sequence[NameRow], name: str) -> float | None:
    return next((row.p99 for row in rows if row.name == name and row.requests), None)


def run_drill(
    drill: Drill, sale_argv: Sequence[str], fault_at: float, keep: Path | None = None
) -> Outcome:
    with contextlib.ExitStack() as cleanup:
        if keep is None:
            workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="drill-")))
        else:
            workdir = keep / drill.name
            workdir.mkdir(parents=True, exist_ok=True)
        sale = parse_args([*sale_argv])
        sale = parse_args([*sale_argv, *drill.sale_args(sale.seconds)])
        # A drill judged against the same sale with no fault runs that one first.
        clean = run_sale(drill, sale, workdir / "clean", None) if drill.baseline else None
        run = run_sale(drill, sale, workdir / "fault", fault_at)
    began, ended, recovered = run.timings or (0.0, 0.0, None)
    during = run.probe.during(began, ended + 10)
    max_answer = max((took for _, _, took in during), default=0.0)
    unexpected = sum(
        n for message, n in run.failures.items() if not drill.expected_failure(message)
    )
    total = next((row for row in run.rows if row.name == "Aggregated"), None)
    load = (
        f"{total.requests / sale.seconds:,.0f} req/s over {sale.seconds} s"
        f" ({total.requests:,} requests)"
        if total
        else "no load"
    )
    problems = list(run.problems)
    p99: dict[str, list[float | None]] = {}
    if clean is not None:
        problems += clean.problems
        if not clean.verified:
            problems.append("the clean sale's verifier failed: " + clean.report[-300:])
        for name in drill.baseline:
            before, after = _p99(clean.rows, name), _p99(run.rows, name)
            p99[name] = [before, after]
            if before is None or after is None:
                problems.append(f"{name}: no requests to compare")
            elif after > BASELINE_FACTOR * max(before, 1.0):
                problems.append(
                    f"{name} p99 {after:g} ms with the fault vs {before:g} ms without"
                    f" (over {BASELINE_FACTOR:g}x)"
                )
    oversold = sum(1 for line in run.report.splitlines() if "oversold: reserved" in line)
    ok = run.verified and unexpected == 0 and max_answer <= ANSWER_BOUND_SECONDS
    ok = ok and recovered is not None and run.undelivered == 0 and not problems
    return Outcome(
        drill=drill.name,
        fault=drill.fault,
        load=load,
        passed=ok,
        oversold=oversold,
        verifier_passed=run.verified,
        verifier=run.report.splitlines()[-1] if run.report else "",
        failed_requests=sum(run.failures.values()),
        unexpected_failures=unexpected,
        undelivered_events=run.undelivered,
        max_answer_seconds=round(max_answer, 3),
        recovery_seconds=None if recovered is None else round(recovered, 2),
        notes=[f"{n}x {message[:120]}" for message, n in sorted(run.failures.items())],
        webhook_deliveries_cut_off=run.cut_deliveries,
        sessions_recovered=run.recovered_sessions,
        checkouts_cut_off=run.cut_checkouts,
        p99_ms_without_and_with_fault=p99,
        problems=problems,
    )


def _with_earlier_rows(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """This run's rows, and those of the drills it did not run from the report's last
    version, one row per drill, sorted by drill."""
    path = DOCS / "reliability.json"
    earlier = json.loads(path.read_text()) if path.exists() else []
    known = {f.name for f in fields(Outcome)}
    rows = {
        row["drill"]: Outcome(**{k: v for k, v in row.items() if k in known}) for row in earlier
    }
    rows.update((o.drill, o) for o in outcomes)
    return [rows[name] for name in sorted(rows)]


def write_report(outcomes: Sequence[Outcome]) -> Path:
    """docs/reliability.md and .json: these rows in place of their drills' earlier ones."""
    outcomes = _with_earlier_rows(outcomes)
    commands: dict[str, list[str]] = {}
    for o in outcomes:
        commands.setdefault(o.command, []).append(o.drill)
    lines = [
        "# Reliability drills",
        "",
        *(f"- `{command}`: {', '.join(drills)}" for command, drills in commands.items()),
        "",
        f"Machine: {platform.machine()}, 2 cores, Python {platform.python_version()}; each drill"
        " runs its own redis-server, nx-27017, Stripe simulator (10% duplicate deliveries, delays"
        " up to 3 s) and the service (2 workers), with Locust buyers sharing the cores.",
        "",
        "| drill | load held | fault | oversold | lost or doubled orders | events undelivered"
        " | failed requests (expected) | max answer during the fault | recovery | outcome |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for o in outcomes:
        recovery = "never" if o.recovery_seconds is None else f"{o.recovery_seconds:.2f} s"
        lines.append(
            f"| {o.drill} | {o.load} | {o.fault} | {o.oversold} | "
            f"{o.lost_or_doubled or ('none (verifier green)' if o.verifier_passed else o.verifier)}"
            f" | {o.undelivered_events} | {o.failed_requests}"
            f" ({o.failed_requests - o.unexpected_failures}) | "
            f"{o.max_answer_seconds:.2f} s | {recovery} | {'pass' if o.passed else 'FAIL'} |"
        )
    lines += [
        "",
        "Recovery: from the end of the fault until the probe got a hold or a sold-out answer"
        " again (Redis drills); for the MongoDB drill, 0 means every probe answer during the"
        " fault was a hold or a sold-out answer (reserves never stopped); worker-killed: until"
        " the replacement worker served; stripe-failing: until a checkout succeeded again;"
        " clock-skew: 0 when every check held; chaos-vs-clean: from the last purchase until the"
        " last event was received, and its max answer is the slowest of the chaos run (not"
        " judged: its load is the purchases themselves).",
        "Expected failures are the 503 answers while a store was down, and requests cut off by"
        " a killed worker (no answer); any other failure fails the drill. Failed requests by"
        " message:",
        "",
    ]
    for o in outcomes:
        lines.append(f"- {o.drill}: " + ("; ".join(o.notes) if o.notes else "none"))
    lines += [
        "",
        "Webhook deliveries that got no answer (the simulator delivered them again), checkouts"
        " a killed worker never answered, and Checkout Sessions the sweeper recorded from a"
        " checkout attempt nobody finished:",
        "",
    ]
    for o in outcomes:
        lines.append(
            f"- {o.drill}: {o.webhook_deliveries_cut_off} deliveries cut off,"
            f" {o.checkouts_cut_off} of the drill's own checkouts cut off,"
            f" {o.sessions_recovered} sessions recovered"
        )
    compared = [o for o in outcomes if o.p99_ms_without_and_with_fault]
    if compared:
        lines += ["", "p99 of the same sale without and with the fault (ms):", ""]
        for o in compared:
            pairs = "; ".join(
                f"{name} {before:g} → {after:g}"
                if before is not None and after is not None
                else f"{name}: not measured"
                for name, (before, after) in o.p99_ms_without_and_with_fault.items()
            )
            lines.append(f"- {o.drill}: {pairs}")
    failed = [o for o in outcomes if o.problems]
    if failed:
        lines += ["", "Problems:", ""]
        lines += [f"- {o.drill}: {problem}" for o in failed for problem in o.problems]
    path = DOCS / "reliability.md"
    path.write_text("\n".join(lines) + "\n")
    (DOCS / "reliability.json").write_text(
        json.dumps([asdict(o) for o in outcomes], indent=2) + "\n"
    )
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.drills", description=__doc__)
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
    args = parser.parse_args(argv)
    sale_argv = [
        "--users",
        str(args.users),
        "--seconds",
        str(args.seconds),
        "--stock",
        "50",
        "--skus",
        "0",
        "--hold-seconds",
        "10",
        "--sweep-seconds",
        "2",
        "--spike-seconds",
        "10",
        "--leave-seconds",
        "0",
        "--patience",
        "15",
        "--tags",
        "buyers",
        # The probe asks 10 times a second from one address: no rate limit in a drill.
        "--rate-limits",
        "off",
    ]
    command = " ".join(
        ["python -m loadtests.drills", shlex.join(sys.argv[1:] if argv is None else list(argv))]
    ).strip()
    outcomes = []
    for name in args.only:
        drill = DRILLS[name]
        if drill.run is not None:
            outcome = drill.run(args)
        else:
            outcome = run_drill(drill, sale_argv, args.fault_at, args.keep)
        outcome.command = command
        print(json.dumps(asdict(outcome)), flush=True)
        outcomes.append(outcome)
    if not args.no_report:
        print("report:", write_report(outcomes))
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
