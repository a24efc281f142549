"""A seeded plan of purchases, and an asyncio driver that makes them against a running stack.

Locust's buyers draw their fates as they go, so two sales never have the same purchases. A plan
is drawn once from a seed: every buyer's customer id, cart and fate (pay; pay, then a refund in
full or in part; a declined card; a declined card, then another that pays; the session expired;
the reservation released; a delayed payment that succeeds or fails). `drive` makes each
purchase the same way whatever stack it runs on: reserve, check out, then the fate, through the
service's API and the Stripe simulator's `/_sim` controls, a bounded number at once. With stock
for every cart, who gets what does not depend on timing: the end of a sale is the plan's alone.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx


class Fate(StrEnum):
    PAID = "paid"
    REFUNDED = "refunded"  # paid, then refunded in full by the merchant
    PARTLY_REFUNDED = "partly_refunded"  # paid, then refunded in part
    DECLINED = "declined"  # the card is declined, the buyer gives up (the session expires)
    DECLINED_THEN_PAID = "declined_then_paid"  # declined, then paid with another card
    EXPIRED = "expired"  # the buyer never pays: the session expires
    RELEASED = "released"  # the buyer cancels: DELETE /v1/reservations/{id}
    DELAYED_PAID = "delayed_paid"  # a delayed method (bank debit) that succeeds
    DELAYED_FAILED = "delayed_failed"  # ... that fails


FATE_WEIGHTS = {
    Fate.PAID: 30,
    Fate.REFUNDED: 8,
    Fate.PARTLY_REFUNDED: 8,
    Fate.DECLINED: 8,
    Fate.DECLINED_THEN_PAID: 6,
    Fate.EXPIRED: 10,
    Fate.RELEASED: 10,
    Fate.DELAYED_PAID: 10,
    Fate.DELAYED_FAILED: 10,
}
# SKU -> (price in cents, max_per_customer); carts stay within the limits.
CATALOG = {
    "tee": (2500, None),
    "cap": (1200, None),
    "hoodie": (5900, 3),
    "socks": (700, None),
    "mug": (1500, None),
}
CURRENCY = "eur"
# Units on hand beyond what the whole plan asks for: nobody is ever refused for stock.
SPARE_STOCK = 50


@dataclass(frozen=True, slots=True)
class Purchase:
    customer_id: str
    lines: tuple[tuple[str, int], ...]  # (sku, quantity), sorted by SKU
    fate: Fate
    refund_amount: int | None = None  # a partial refund's amount; None: in full (or none)

    @property
    def amount(self) -> int:
        return sum(CATALOG[sku][0] * quantity for sku, quantity in self.lines)


@dataclass(frozen=True, slots=True)
class Plan:
    seed: int
    purchases: tuple[Purchase, ...]

    def stock(self) -> dict[str, int]:
        """Units of each SKU: every cart's demand and SPARE_STOCK more."""
        demand: Counter[str] = Counter()
        for purchase in self.purchases:
            for sku, quantity in purchase.lines:
                demand[sku] += quantity
        return {sku: demand[sku] + SPARE_STOCK for sku in CATALOG}


def make_plan(purchases: int, seed: int) -> Plan:
    """`purchases` buyers, drawn from `seed`: the same seed, the same plan."""
    if purchases < 1:
        raise ValueError("a plan needs at least one purchase")
    draw = random.Random(seed)
    fates, weights = list(FATE_WEIGHTS), list(FATE_WEIGHTS.values())
    made = []
    for number in range(purchases):
        skus = sorted(draw.sample(sorted(CATALOG), draw.randint(1, 3)))
        lines = tuple((sku, draw.randint(1, CATALOG[sku][1] or 3)) for sku in skus)
        fate = draw.choices(fates, weights)[0]
        purchase = Purchase(f"cus_plan_{number:05d}", lines, fate)
        if fate is Fate.PARTLY_REFUNDED:
            amount = draw.randint(1, purchase.amount - 1)
            purchase = Purchase(purchase.customer_id, lines, fate, amount)
        made.append(purchase)
    return Plan(seed, tuple(made))


# -- driving -------------------------------------------------------------------------------------


@dataclass
class Trace:
    """What one purchase got in one run: its ids there, and the requests that went wrong."""

    reservation_id: str | None = None
    session_id: str | None = None
    failures: list[str] = field(default_factory=list)


@dataclass
class Drive:
    traces: dict[str, Trace]  # customer id -> its trace
    seconds: float
    requests: int
    slowest_seconds: float  # the slowest answer
    finished_at: float  # time.time() when the last purchase was made

    @property
    def failures(self) -> list[str]:
        return [failure for trace in self.traces.values() for failure in trace.failures]


@dataclass
class Driver:
    service: httpx.AsyncClient
    sim: httpx.AsyncClient
    requests: int = 0
    slowest_seconds: float = 0.0

    async def call(
        self,
        trace: Trace,
        name: str,
        http: httpx.AsyncClient,
        method: str,
        path: str,
        expect: int,
        **kw: Any,
    ) -> dict[str, Any] | None:
        """One request; its JSON when it answered `expect`, else None and a failure noted
        under `name` (ids left out, so that failures group by kind)."""
        started = time.monotonic()
        try:
            answer = await http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            trace.failures.append(f"{name}: no answer ({type(exc).__name__})")
            return None
        finally:
            self.requests += 1
            self.slowest_seconds = max(self.slowest_seconds, time.monotonic() - started)
        if answer.status_code != expect:
            trace.failures.append(f"{name}: {answer.status_code} {answer.text[:160]}")
            return None
        found: dict[str, Any] = answer.json()
        return found

    async def purchase(self, purchase: Purchase) -> Trace:
        """Reserve, check out, then the purchase's fate."""
        trace = Trace()
        cart = {
            "items": [{"sku": sku, "quantity": quantity} for sku, quantity in purchase.lines],
            "customer_id": purchase.customer_id,
        }
        key = {"Idempotency-Key": f"{purchase.customer_id}-cart"}
        held = await self.call(
            trace, "reserve", self.service, "POST", "/v1/reservations", 201, json=cart, headers=key
        )
        if held is None:
            return trace
        trace.reservation_id = held["id"]
        body = {"reservation_id": held["id"]}
        made = await self.call(
            trace, "checkout", self.service, "POST", "/v1/checkout", 201, json=body
        )
        if made is None:
            return trace
        trace.session_id = made["checkout_session_id"]
        await self.fate(trace, purchase)
        return trace

    async def sim_session(
        self, trace: Trace, action: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """POST /_sim/sessions/{id}/{action}: the buyer (or the bank) on Stripe's side."""
        path = f"/_sim/sessions/{trace.session_id}/{action}"
        return await self.call(trace, f"sim {action}", self.sim, "POST", path, 200, json=body or {})

    async def fate(self, trace: Trace, purchase: Purchase) -> None:
        fate = purchase.fate
        if fate in (Fate.DECLINED, Fate.DECLINED_THEN_PAID):
            await self.sim_session(trace, "fail_payment")
        if fate is Fate.RELEASED:
            path = f"/v1/reservations/{trace.reservation_id}"
            await self.call(trace, "release", self.service, "DELETE", path, 200)
        elif fate in (Fate.DECLINED, Fate.EXPIRED):
            await self.sim_session(trace, "expire")
        elif fate in (Fate.DELAYED_PAID, Fate.DELAYED_FAILED):
            if await self.sim_session(trace, "complete", {"payment_status": "unpaid"}):
                settled = {"succeeded": fate is Fate.DELAYED_PAID}
                await self.sim_session(trace, "async_payment", settled)
        else:
            event = await self.sim_session(trace, "complete", {"payment_status": "paid"})
            if event is not None and fate in (Fate.REFUNDED, Fate.PARTLY_REFUNDED):
                intent = event["data"]["object"]["payment_intent"]
                amount = purchase.refund_amount
                body = {} if amount is None else {"amount": amount}
                path = f"/_sim/refund_event/{intent}"
                await self.call(trace, "sim refund", self.sim, "POST", path, 200, json=body)


async def drive(plan: Plan, service_url: str, sim_url: str, concurrency: int = 50) -> Drive:
    """Make every purchase of the plan, `concurrency` at once."""
    # Idle connections are dropped well before uvicorn's keep-alive timeout (5 s, httpx's own
    # default too): else a request may go out on a connection the server is closing, and get
    # no answer (ReadError), which a busy run met.
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0
    )
    gate = asyncio.Semaphore(concurrency)
    async with (
        httpx.AsyncClient(base_url=service_url, timeout=60, limits=limits) as service,
        httpx.AsyncClient(base_url=sim_url, timeout=60, limits=limits) as sim,
    ):
        driver = Driver(service, sim)

        async def one(purchase: Purchase) -> tuple[str, Trace]:
            async with gate:
                return purchase.customer_id, await driver.purchase(purchase)

        started = time.monotonic()
        traces = dict(await asyncio.gather(*(one(purchase) for purchase in plan.purchases)))
        seconds = time.monotonic() - started
    return Drive(traces, seconds, driver.requests, driver.slowest_seconds, time.time())
