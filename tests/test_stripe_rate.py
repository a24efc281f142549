"""One Stripe rate for the whole account: every process's gate takes its calls from one rate in
Redis (reservation/payments/gate.py, core/ratelimit.py's SharedRate); concurrency stays per
process. Redis down: each process paces its calls alone, as before."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import stripe
from redis.asyncio import Redis

from domain.errors import PaymentProviderUnavailable
from reservation.core.keys import KeySpace
from reservation.core.ratelimit import RateLimit, SharedRate, shared_rate
from reservation.payments.gate import StripeGate
from tests.conftest import REDIS_URL
from tests.stripe_fake import API_KEY, StripeSim

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = "/v1/checkout/sessions"
RATE = 10
PROCESSES = 3
# Per process: 45 calls in all, which one shared rate of 10 a second spreads over 4 s at least;
# a gate per process (the rate times 3) would send them within about 1.5 s.
CALLS = 15


def test_a_rate_becomes_whole_calls_in_a_window_of_whole_ms() -> None:
    assert shared_rate(25) == RateLimit(25, 1.0)
    assert shared_rate(2.5) == RateLimit(2, 0.8)
    assert shared_rate(0.5) == RateLimit(1, 2.0)
    assert shared_rate(1e12) == RateLimit(10**12, 1.0)


def _driver(env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.gate_driver", "--calls", str(CALLS)]
    pipe = subprocess.PIPE
    return subprocess.Popen(command, env=env, cwd=ROOT, stdin=pipe, stdout=pipe, text=True)


def _run_drivers(env: dict[str, str], sim: StripeSim) -> tuple[float, list[object]]:
    """Start the processes, let them call at once; the start time and what each printed."""
    drivers = [_driver(env) for _ in range(PROCESSES)]
    try:
        for driver in drivers:
            assert driver.stdout is not None
            assert driver.stdout.readline().strip() == "ready"
        sim.clear_requests()
        start = time.time()
        for driver in drivers:
            assert driver.stdin is not None
            driver.stdin.write("go\n")
            driver.stdin.flush()
        return start, [json.loads(driver.communicate(timeout=300)[0]) for driver in drivers]
    finally:
        for driver in drivers:
            if driver.poll() is None:
                driver.kill()
                driver.wait()


async def test_three_processes_share_one_stripe_rate(
    stripe_sim: StripeSim, keyspace: KeySpace
) -> None:
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "RESERVATION_KEY_PREFIX": keyspace.prefix,
        "STRIPE_SECRET_KEY": API_KEY,
        "STRIPE_API_BASE": stripe_sim.url,
        "STRIPE_RATE_PER_SECOND": str(RATE),
        "STRIPE_CONCURRENCY": str(CALLS),
        "STRIPE_TIMEOUT_SECONDS": "300",
    }
    try:
        start, printed = _run_drivers(env, stripe_sim)
    finally:
        redis = Redis.from_url(REDIS_URL)
        await redis.delete(keyspace.stripe_rate)
        await redis.aclose()
    assert printed == [{"answered": CALLS, "refused": 0}] * PROCESSES
    arrived = sorted(float(r["time"]) - start for r in stripe_sim.requests("GET", SESSIONS))
    assert len(arrived) == PROCESSES * CALLS
    per_second = sorted(Counter(int(t) for t in arrived).items())
    # No span of 1 s admits more than RATE calls (Redis's clock, whole ms), and a call reaches
    # Stripe after it was admitted: so the k-th call (from 0) reached it no sooner than k // RATE
    # seconds after the start, whatever the machine's speed (a slow one only spreads them more).
    early = [(k, round(t, 3)) for k, t in enumerate(arrived) if t < k // RATE - 0.002]
    assert early == [], f"calls over the rate of {RATE}/s; calls per second: {per_second}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_spent_shared_rate_makes_another_gate_wait(
    stripe_sim: StripeSim, keyspace: KeySpace
) -> None:
    """Two gates (two processes' worth) on one Redis: one call a 100 s spends the rate, so the
    other gate's call waits, and gives up at its bound without sending anything."""
    redis = Redis.from_url(REDIS_URL)

    def gate() -> StripeGate:
        shared = SharedRate(redis, keyspace.stripe_rate, 0.01)
        return StripeGate(
            concurrency=4, rate_per_second=100, timeout_seconds=0.5, max_attempts=1, shared=shared
        )

    first, second = gate(), gate()
    try:
        async with stripe_sim.async_client() as client:
            await first.call(client.v1.checkout.sessions.list_async)
            with pytest.raises(PaymentProviderUnavailable) as refused:
                await second.call(client.v1.checkout.sessions.list_async)
    finally:
        await redis.delete(keyspace.stripe_rate)
        await redis.aclose()
    assert refused.value.sent is False
    assert second.saturated
    assert len(stripe_sim.requests("GET", SESSIONS)) == 1


async def test_redis_down_the_gate_paces_its_calls_alone(
    stripe_sim: StripeSim, keyspace: KeySpace, caplog: pytest.LogCaptureFixture
) -> None:
    redis = Redis(port=_closed_port(), socket_connect_timeout=5)
    shared = SharedRate(redis, keyspace.stripe_rate, 10)
    gate = StripeGate(
        concurrency=4, rate_per_second=10, timeout_seconds=30, max_attempts=1, shared=shared
    )
    try:
        with caplog.at_level(logging.WARNING, logger="reservation.payments"):
            async with stripe_sim.async_client() as client:
                for _ in range(3):
                    await gate.call(client.v1.checkout.sessions.list_async)
    finally:
        await redis.aclose()
    assert len(stripe_sim.requests("GET", SESSIONS)) == 3
    assert gate.shared_down_until > 0
    assert any("shared Stripe rate is unavailable" in r.getMessage() for r in caplog.records)


async def test_the_gate_counts_the_calls_inside_it() -> None:
    """The operations page's `in_flight`: the calls holding a place of the gate now, counted
    by the gate (not read from the semaphore's private count), and none once they ended."""
    gate = StripeGate(concurrency=4, rate_per_second=1000, timeout_seconds=30, max_attempts=1)
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def operation() -> str:
        inside.set()
        await leave.wait()
        return "done"

    async def failing() -> str:
        raise stripe.APIConnectionError("no answer")  # type: ignore[no-untyped-call]

    call = asyncio.create_task(gate.call(operation))
    await asyncio.wait_for(inside.wait(), 30)
    assert gate.in_flight == 1
    leave.set()
    assert await call == "done"
    assert gate.in_flight == 0
    with pytest.raises(PaymentProviderUnavailable):
        await gate.call(failing)
    assert gate.in_flight == 0
