"""Delivery chaos against a clean run: the same purchases twice must end in the same state.

The `chaos-vs-clean` drill of `python -m loadtests.drills`. One seeded plan of purchases
(loadtests/purchase_plan.py) is made twice, each time on a fresh stack of its own (redis-server,
nx-27017, the Stripe simulator, `reservation serve --workers 2`): first with clean delivery
(every event once, at once), then with chaos (a tenth of the events delivered twice, each
delivery delayed up to 5 s at random, so late and out of order). Each run then drains the
webhooks, sweeps, reads its final state and runs the verifier on it.

The two final states are compared by the plan's buyers (customer ids), never by ids that differ
between runs (loadtests/final_state.py): per buyer, the reservation's status, its orders
(status, lines, amounts) and its Checkout Sessions and refunds at Stripe; per SKU, stock,
reserved, sold and available; orders by status, sessions by status, refunds. The drill passes
when both verifiers are green, no request failed, every event was delivered, and the two ends
are equal.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.servers import RedisServer
from loadtests.final_state import Difference, FinalState, compare, final_state, summary
from loadtests.purchase_plan import CATALOG, CURRENCY, Drive, Plan, Trace, drive, make_plan
from loadtests.run_flash_sale import parse_args
from loadtests.sale_stack import Stack, drain, start_stack, sweep
from loadtests.verify import Report, check, read_world
from reservation.operations.reconcile import sold_statuses
from reservation.payments.gate import stripe_client
from reservation.settings import Settings
from reservation.stores.embedded import EmbeddedMongo

DUPLICATE_SHARE = 0.1
DELIVERY_DELAY_SECONDS = 5.0
PURCHASES = 1500
SEED = 12
CONCURRENCY = 50
# Holds outlive both runs: none lapses while its purchase is under way, whatever the timing.
HOLD_SECONDS = 600
# The simulator takes no rate limit; Stripe's own is what the default (25/s per process) is for.
SERVICE_ENV = {"STRIPE_RATE_PER_SECOND": "500"}


# -- one run -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deliveries:
    """What the simulator's delivery log says of a run."""

    events: int
    cut_off: int  # delivery attempts that got no answer
    delivered_twice: int  # events the service received (answered 2xx) more than once
    overtaken: int  # events first received after an event made later than them
    last_at: float  # when the last event was first received (time.time())


def deliveries(stack: Stack) -> Deliveries:
    with httpx.Client(base_url=stack.sim_url, timeout=30) as http:
        events = [event["id"] for event in http.get("/_sim/events").json()["data"]]
        log = http.get("/_sim/deliveries").json()["data"]
    received = Counter(entry["event_id"] for entry in log if entry["ok"])
    first: dict[str, float] = {}
    for entry in log:
        if entry["ok"]:
            first[entry["event_id"]] = min(
                first.get(entry["event_id"], entry["time"]), entry["time"]
            )
    # Walking back from the newest event: an event is overtaken when one made after it was
    # received before it.
    overtaken, earliest_later = 0, float("inf")
    for event_id in reversed(events):
        at = first.get(event_id, float("inf"))
        overtaken += earliest_later < at
        earliest_later = min(earliest_later, at)
    return Deliveries(
        len(events),
        sum(1 for entry in log if entry["status"] is None),
        sum(1 for n in received.values() if n > 1),
        overtaken,
        max(first.values(), default=0.0),
    )


@dataclass
class Run:
    """One run of the plan on a stack of its own, and how it ended."""

    name: str
    drive: Drive
    state: FinalState
    report: Report
    undelivered: int
    deliveries: Deliveries

    @property
    def settle_seconds(self) -> float:
        """From the last purchase until the last event was received."""
        return max(self.deliveries.last_at - self.drive.finished_at, 0.0)


async def _read(stack: Stack, traces: Mapping[str, Trace]) -> tuple[FinalState, Report]:
    """The final state and the verifier's report, from one reading of the stores and Stripe
    (`loadtests.verify.read_world`) and the service's API."""
    settings = Settings.from_env(stack.env)
    client, http_client = stripe_client(settings)
    try:
        world = await read_world(settings, client)
    finally:
        await http_client.close_async()  # type: ignore[no-untyped-call]
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(keepalive_expiry=2.0)  # under uvicorn's 5 s: see purchase_plan.drive
    async with httpx.AsyncClient(base_url=stack.service_url, timeout=60, limits=limits) as http:

        async def status(reservation_id: str) -> tuple[str, str | None]:
            async with gate:
                answer = await http.get(f"/v1/reservations/{reservation_id}")
            if answer.status_code == 404:
                return reservation_id, None
            answer.raise_for_status()
            return reservation_id, str(answer.json()["status"])

        ids = [trace.reservation_id for trace in traces.values() if trace.reservation_id]
        reservations = dict(await asyncio.gather(*(status(rid) for rid in ids)))
        products = (await http.get("/v1/products")).raise_for_status().json()["data"]
    state = final_state(world, traces, reservations, products)
    # The merchant refunds in this plan, so the verifier expects refunds not made by us.
    return state, check(world, sold_statuses(settings), merchant_refunds=True)


@contextlib.contextmanager
def _stores(workdir: Path) -> Iterator[tuple[str, str]]:
    """A redis-server and an nx-27017 of the run's own (never the machine's Redis)."""
    redis_server, mongo = RedisServer(workdir / "redis"), EmbeddedMongo(workdir / "mongo")
    try:
        redis_server.start()
        yield redis_server.url, mongo.start()
    finally:
        mongo.stop()
        redis_server.stop()


def _put_catalog(stack: Stack, plan: Plan) -> None:
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    with httpx.Client(base_url=stack.service_url, headers=headers, timeout=30) as http:
        for sku, stock in plan.stock().items():
            price, limit = CATALOG[sku]
            body = {"name": sku, "price": price, "currency": CURRENCY, "stock": stock}
            http.put(
                f"/v1/products/{sku}", json={**body, "max_per_customer": limit}
            ).raise_for_status()


def run_once(
    plan: Plan, name: str, workdir: Path, chaos: bool, sim_args: Sequence[str] = ()
) -> Run:
    """The plan on a fresh stack: delivery `chaos` or clean; drained, swept, read, verified."""
    sale = parse_args(
        [
            "--workers",
            "2",
            "--hold-seconds",
            str(HOLD_SECONDS),
            "--duplicate-share",
            str(DUPLICATE_SHARE if chaos else 0.0),
            "--delivery-delay",
            str(DELIVERY_DELAY_SECONDS if chaos else 0.0),
            "--latency-ms",
            "0",
            "0",
            # The driver's buyers all come from one address: the drill is about delivery.
            "--rate-limits",
            "off",
        ]
    )
    workdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(workdir)
    with _stores(workdir) as (redis_url, mongodb_uri):
        try:
            start_stack(
                stack,
                sale,
                redis_url,
                mongodb_uri,
                (*sim_args, "--seed", str(plan.seed)),
                SERVICE_ENV,
            )
            _put_catalog(stack, plan)
            made = asyncio.run(drive(plan, stack.service_url, stack.sim_url, CONCURRENCY))
            drain(stack)
            sweep(stack)
            undelivered = drain(stack)
            state, report = asyncio.run(_read(stack, made.traces))
            delivered = deliveries(stack)
        finally:
            stack.stop()
    return Run(name, made, state, report, undelivered, delivered)


def fault(purchases: int) -> str:
    """The drill's fault, as the report says it."""
    return (
        f"{DUPLICATE_SHARE * 100:g} % duplicate deliveries, delays up to"
        f" {DELIVERY_DELAY_SECONDS:g} s (shuffled), against a clean run of the same"
        f" {purchases:,} purchases"
    )


@dataclass
class ChaosVsClean:
    """Both runs of one plan and how their ends differ; what the drills' report shows."""

    plan: Plan
    clean: Run
    chaos: Run
    differences: list[Difference] = field(default_factory=list)

    @property
    def runs(self) -> tuple[Run, Run]:
        return self.clean, self.chaos

    @property
    def passed(self) -> bool:
        return (
            not self.differences
            and self.verified
            and not self.undelivered
            and not sum(self.failures.values())
        )

    @property
    def verified(self) -> bool:
        return all(run.report.passed for run in self.runs)

    @property
    def verifier(self) -> str:
        return "; ".join(f"{run.name}: {run.report.text().splitlines()[0]}" for run in self.runs)

    @property
    def oversold(self) -> int:
        return sum(
            1
            for run in self.runs
            for violation in run.report.violations
            if violation.detail.startswith("oversold")
        )

    @property
    def failures(self) -> Counter[str]:
        """Requests of either run that did not answer as the plan expects, by kind."""
        return Counter(failure for run in self.runs for failure in run.drive.failures)

    @property
    def undelivered(self) -> int:
        return sum(run.undelivered for run in self.runs)

    @property
    def load(self) -> str:
        purchases, drive = len(self.plan.purchases), self.chaos.drive
        return (
            f"{purchases / drive.seconds:,.0f} purchases/s over {drive.seconds:.0f} s"
            f" ({drive.requests:,} requests; clean run {self.clean.drive.seconds:.0f} s)"
        )

    @property
    def lost_or_doubled(self) -> str:
        """The comparison, and how hard the chaos bit."""
        d = self.chaos.deliveries
        return (
            f"{summary(self.differences, len(self.plan.purchases))} (chaos run: {d.events:,}"
            f" events, {d.delivered_twice} received twice, {d.overtaken:,} received after a"
            " later one)"
        )


def chaos_vs_clean(
    purchases: int = PURCHASES,
    seed: int = SEED,
    keep: Path | None = None,
    sim_args: Sequence[str] = (),
) -> ChaosVsClean:
    """The plan clean, then with delivery chaos, each on its own stack; the two ends compared.
    `sim_args`: more simulator options for both (the drills' patient redelivery)."""
    plan = make_plan(purchases, seed)
    with contextlib.ExitStack() as cleanup:
        if keep is None:
            workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="chaos-")))
        else:
            workdir = keep
        clean = run_once(plan, "clean", workdir / "clean", chaos=False, sim_args=sim_args)
        chaos = run_once(plan, "chaos", workdir / "chaos", chaos=True, sim_args=sim_args)
    return ChaosVsClean(plan, clean, chaos, compare(clean.state, chaos.state))
