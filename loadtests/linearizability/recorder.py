"""A recorded run: a stack of its own (loadtests/sale_stack.py: a redis-server, an nx-27017,
the Stripe simulator with delivery chaos, `reservation serve --workers 2`, on free loopback
ports), the catalog PUT, concurrent clients (loadtests/linearizability/buyers.py) each making
one call at a time for a while, and the late buyers, each in a pool of its own (comeback.py),
a fault injected meanwhile (faults.py), then every webhook drained; the history and the
catalog it starts from are written to the report directory (`history.jsonl`,
`initial.json`).

Holds last 600 s, so none lapses during a run: the checks need no clock. The sold-out memory
and the product read cache keep their defaults (0.1 s), so the windows are exercised."""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from loadtests.drills.target import Stores, own_stores
from loadtests.linearizability import history
from loadtests.linearizability.buyers import Buyer
from loadtests.linearizability.catalog import Catalog, put_products
from loadtests.linearizability.comeback import LateBuyer
from loadtests.linearizability.faults import DELIVERY, NO_FAULT, Fault
from loadtests.linearizability.recording import Recording
from loadtests.sale_stack import ROOT, Stack, drain, start_stack

HOLD_SECONDS = 600
EVERY_KIND_SECONDS = 60.0
HISTORY = "history.jsonl"
INITIAL = "initial.json"


@dataclass(frozen=True)
class RunOptions:
    """How long, how many clients, which fault (and when), the tree the service runs from."""

    report_dir: Path
    seconds: float = 10.0
    clients: int = 8
    fault: Fault = NO_FAULT
    fault_at: float | None = None  # seconds into the run; None: a quarter of it
    seed: int = 1
    timeout: float = 5.0  # a call not answered by then is unknown
    # The crowd's calls per second, all clients together (each client paces its own share,
    # give or take half): the same history length on a quick machine as on a slow one, so
    # the check's time does not grow with the machine's speed. 0: as fast as they answer.
    rate: float = 200.0
    # Go on past `seconds` (60 s at most) until every kind of call was made at least once.
    every_kind: bool = False
    root: Path = ROOT
    catalog: Catalog = field(default_factory=Catalog)


@dataclass(frozen=True)
class RunResult:
    """Where the history and its catalog are, how many operations, what the fault did."""

    history: Path
    initial: Path
    operations: int
    undelivered: int
    fault: str
    seconds: float


def record(options: RunOptions) -> RunResult:
    """One recorded run on a stack of its own, stopped whatever happens."""
    started = time.monotonic()
    options.report_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lin-") as temp:
        workdir = Path(temp)
        with own_stores(workdir, options.fault.redis_args) as stores:
            stack = Stack(workdir, root=options.root)
            try:
                recording, note, undelivered = _run_on(stack, stores, options)
            except BaseException:
                _keep_logs(stack, options.report_dir)
                raise
            finally:
                stack.stop()
            _keep_logs(stack, options.report_dir)
    path = options.report_dir / HISTORY
    operations = recording.history()
    history.write(path, operations)
    initial = options.report_dir / INITIAL
    options.catalog.write(initial)
    return RunResult(path, initial, len(operations), undelivered, note, time.monotonic() - started)


def _run_on(stack: Stack, stores: Stores, options: RunOptions) -> tuple[Recording, str, int]:
    """Start the stack, PUT the catalog, run the clients with the fault; drain the webhooks and
    complete the payments from the delivery log."""
    start_stack(
        stack,
        _stack_args(options),
        stores.redis.url,
        stores.mongo.uri,
        DELIVERY,
        {**options.catalog.service_env(), **options.fault.service_env},
    )
    put_products(stack.service_url, stack.admin_token, options.catalog)
    recording = Recording(options.catalog, stack.customer_token_secret)
    notes: list[str] = []
    fault_at = options.seconds / 4 if options.fault_at is None else options.fault_at

    def inject() -> None:
        time.sleep(fault_at)
        notes.append(options.fault.inject(stores, stack))

    injector = threading.Thread(target=inject, daemon=True)
    injector.start()
    asyncio.run(_clients(stack, recording, options))
    injector.join()
    undelivered_events = drain(stack, quiet_seconds=0.5)
    with httpx.Client(base_url=stack.sim_url, timeout=30) as sim:
        deliveries = sim.get("/_sim/deliveries").json()["data"]
    undelivered = recording.complete_payments(deliveries)
    note = notes[0] if notes else "no fault"
    if undelivered_events:
        note += f"; {undelivered_events} events never delivered"
    return recording, note, undelivered


def _stack_args(options: RunOptions) -> argparse.Namespace:
    """The options loadtests/sale_stack.py's start_stack reads."""
    return argparse.Namespace(
        hold_seconds=HOLD_SECONDS,
        sweep_seconds=5.0,
        redis_cluster=False,
        rate_limits="off",
        duplicate_share=options.fault.duplicate_share,
        delivery_delay=options.fault.delivery_delay,
        latency_ms=(10, 60),
        workers=2,
    )


async def _clients(stack: Stack, recording: Recording, options: RunOptions) -> None:
    """`options.clients` buyers, each one call at a time, until the run's time is up."""
    until = time.monotonic() + options.seconds
    last = until + (EVERY_KIND_SECONDS if options.every_kind else 0.0)

    def going() -> bool:
        now = time.monotonic()
        return now < until or (now < last and not recording.covers_every_kind())

    timeout = httpx.Timeout(options.timeout)
    interval = options.clients / options.rate if options.rate else 0.0
    async with (
        httpx.AsyncClient(base_url=stack.service_url, timeout=timeout) as http,
        httpx.AsyncClient(base_url=stack.sim_url, timeout=timeout) as sim,
        # The late buyer's: no connection kept, so each call's worker is the kernel's pick.
        httpx.AsyncClient(
            base_url=stack.service_url,
            timeout=timeout,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as fresh,
    ):

        async def client(process: int) -> None:
            rng = random.Random(options.seed * 100_003 + process)
            buyer = Buyer(process, rng, recording, http, sim)
            while going():
                started = time.monotonic()
                await buyer.act()
                wait = started + interval * rng.uniform(0.5, 1.5) - time.monotonic()
                await asyncio.sleep(max(wait, 0.0))

        clients = [client(process) for process in range(options.clients)]
        catalog = options.catalog
        for n, pool in enumerate(catalog.comeback):
            (sku,) = catalog.pools[pool]
            late = LateBuyer(options.clients + n, pool, sku, recording, fresh)
            clients.append(late.run(lambda: time.monotonic() < until))
        await asyncio.gather(*clients)


def _keep_logs(stack: Stack, report_dir: Path) -> None:
    """The stack's logs beside the history (the temporary directory goes)."""
    logs = report_dir / "logs"
    logs.mkdir(exist_ok=True)
    for name, log in stack.logs.items():
        if log.exists():
            (logs / f"{name}.log").write_bytes(log.read_bytes())
