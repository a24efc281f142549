"""The faults a recorded run may suffer, as the drills inject them (loadtests/drills/): Redis
restarted with its data, an API worker SIGKILLed, MongoDB stopped, Stripe slow, webhook
chaos. Each says what its stores, simulator and service need, and injects itself into a
running stack; the history recorded meanwhile is checked like any other.

Redis lost *empty* is not among them: the service then rebuilds its counters from MongoDB
(holds it never persisted are gone, their units back on sale), a state no sequential history
of the operations explains. docs/reliability.md says what the checks assert across it.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import redis

from loadtests.drills.store_faults import outage
from loadtests.drills.target import Stores
from loadtests.sale_stack import Stack, service_workers

# Stripe's deliveries as the sale rehearsals make them (some twice, delayed, so reordered);
# webhook-chaos makes them much worse. Retried over minutes, as Stripe would: an outage of the
# service's stores must not lose an event.
DELIVERY = ("--webhook-attempts", "12", "--webhook-retry-seconds", "0.25")


@dataclass(frozen=True)
class Fault:
    """One fault: its name, what it does, what the stack needs for it, and its injection
    (given the stores and the running stack; returns what it did, for the report)."""

    name: str
    description: str
    inject: Callable[[Stores, Stack], str]
    redis_args: tuple[str, ...] = ()
    # The simulator's delivery chaos: the share of events delivered twice, the longest delay.
    duplicate_share: float = 0.1
    delivery_delay: float = 1.0
    service_env: dict[str, str] = field(default_factory=dict)


def redis_restart(stores: Stores, stack: Stack) -> str:
    """Restart Redis (SIGTERM: its AOF, fsynced at every write, is complete), then flush its
    functions: the service loads its scripts again by itself."""
    stores.redis.restart()
    time.sleep(2)
    client = redis.Redis.from_url(stores.redis.url)
    try:
        client.function_flush()
    finally:
        client.close()
    return "Redis restarted with its data (AOF), then FUNCTION FLUSH"


def worker_killed(stack_stores: Stores, stack: Stack, kills: int = 3, every: float = 3.0) -> str:
    """SIGKILL one of the 2 API workers, `kills` times, `every` seconds apart: the calls it was
    answering are cut off (unknown), the supervisor starts a new one."""
    killed = 0
    for round_ in range(kills):
        if round_:
            time.sleep(every)
        workers = service_workers(stack)
        if workers:
            workers[round_ % len(workers)].send_signal(signal.SIGKILL)
            killed += 1
    return f"one of 2 API workers SIGKILLed {killed} times, {every:g} s apart"


def mongodb_stopped(stores: Stores, stack: Stack, seconds: float = 5.0) -> str:
    """MongoDB stopped `seconds` (same data after): reserves go on; releases, checkouts and
    webhooks answer 503 meanwhile (unknown), Stripe delivers again."""
    outage(stores.mongo.stop, stores.mongo.start, seconds)
    return f"MongoDB stopped for {seconds:g} s"


STRIPE_PHASES = ((3.0, 5.0), (8.0, 5.0))  # (each answer's delay, for how long)


def stripe_slow(stores: Stores, stack: Stack) -> str:
    """Stripe answers every API call 3 s late for 5 s, then 8 s late (past the service's bound
    of 5 s: checkouts answer 503 and release their holds) for 5 s more."""
    with httpx.Client(base_url=stack.sim_url, timeout=30) as sim:
        for delay, seconds in STRIPE_PHASES:
            sim.delete("/_sim/faults").raise_for_status()
            fault = {"path": "/v1/*", "method": "*", "mode": "delay", "seconds": delay}
            sim.post("/_sim/faults", json={**fault, "count": None}).raise_for_status()
            time.sleep(seconds)
        sim.delete("/_sim/faults").raise_for_status()
    phases = ", then ".join(f"{d:g} s late for {s:g} s" for d, s in STRIPE_PHASES)
    return f"Stripe's answers {phases}"


def webhook_chaos(stores: Stores, stack: Stack) -> str:
    """Nothing to do while the run goes: its simulator delivers half the events twice, each
    copy after its own delay of up to 4 s (so out of order), from the start."""
    return "half the webhook events delivered twice, every delivery delayed up to 4 s"


NO_FAULT = Fault("none", "no fault", lambda stores, stack: "no fault")
FAULTS = {
    fault.name: fault
    for fault in (
        Fault(
            "redis-restart",
            "Redis restarted with its data (AOF), then FUNCTION FLUSH",
            redis_restart,
            redis_args=("--appendonly", "yes", "--appendfsync", "always"),
        ),
        Fault("worker-killed", "an API worker SIGKILLed 3 times, 3 s apart", worker_killed),
        Fault("mongodb-stopped", "MongoDB stopped for 5 s", mongodb_stopped),
        Fault(
            "stripe-slow",
            "Stripe 3 s late for 5 s, then 8 s late for 5 s",
            stripe_slow,
            service_env={"STRIPE_TIMEOUT_SECONDS": "5"},
        ),
        Fault(
            "webhook-chaos",
            "half the webhooks delivered twice, each delayed up to 4 s",
            webhook_chaos,
            duplicate_share=0.5,
            delivery_delay=4.0,
        ),
    )
}
