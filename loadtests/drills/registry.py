"""Every drill by name, and the Locust failures each fault makes expected."""

from __future__ import annotations

from loadtests import chaos_compare
from loadtests.drills.chaos_vs_clean import chaos_vs_clean, runs_itself
from loadtests.drills.clock_skew import clock_skewed, skewed
from loadtests.drills.drill import Drill
from loadtests.drills.store_faults import mongodb_stopped, redis_lost, redis_restart
from loadtests.drills.stripe_failing import PHASE_SECONDS, STRIPE_BOUND, stripe_failing
from loadtests.drills.waitlist_lost import redis_lost_with_a_line
from loadtests.drills.worker_killed import KILL_EVERY, KILLS, workers_killed


def is_503(message: str) -> bool:
    """Locust's failure message, e.g. "CatchResponseError('503: {...}')"."""
    return "('503: " in message or message.startswith("503: ")


def checkout_503(message: str) -> bool:
    """A checkout refused while Stripe failed: 503 payment_provider_unavailable."""
    return is_503(message) and "payment_provider_unavailable" in message


def cut_off(message: str) -> bool:
    """A request whose worker was killed under it: no answer at all (status 0), e.g.
    `CatchResponseError("0: no answer (RemoteDisconnected(...))")`."""
    return "0: no answer" in message


DRILLS = {
    "redis-lost": Drill(
        "redis-lost",
        "Redis killed, 3 s down, restarted empty",
        (),
        redis_lost,
        is_503,
    ),
    "redis-lost-waitlist": Drill(
        "redis-lost-waitlist",
        "Redis killed with 38 buyers in a waiting list (2 offered), 3 s down, restarted empty",
        (),
        redis_lost_with_a_line,
        is_503,
    ),
    "redis-restart": Drill(
        "redis-restart",
        "Redis restarted with its data (AOF), then FUNCTION FLUSH",
        ("--appendonly", "yes", "--appendfsync", "always"),
        redis_restart,
        lambda message: False,
    ),
    "mongodb-stopped": Drill(
        "mongodb-stopped",
        "MongoDB stopped for 5 s during webhook load",
        (),
        mongodb_stopped,
        is_503,
    ),
    "worker-killed": Drill(
        "worker-killed",
        f"one of 2 API workers SIGKILLed, {KILLS} times {KILL_EVERY:g} s apart",
        (),
        workers_killed,
        cut_off,
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
        stripe_failing,
        checkout_503,
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
        clock_skewed,
        lambda message: False,
        skewed("+4m"),
        # Stock for every buyer and the checks' own holds.
        sale_args=lambda seconds: ("--stock", "1000"),
    ),
    "chaos-vs-clean": Drill(
        "chaos-vs-clean",
        chaos_compare.fault(chaos_compare.PURCHASES),
        (),
        runs_itself,
        lambda message: False,
        run=chaos_vs_clean,
    ),
}
