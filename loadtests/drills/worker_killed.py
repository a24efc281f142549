"""The worker-killed drill: one API worker SIGKILLed three times while checkouts are half made
and webhooks wait on their refunds."""

from __future__ import annotations

import contextlib
import random
import signal
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil

from loadtests.drills.target import Target, Timings
from loadtests.sale_stack import service_workers

KILLS = 3
KILL_EVERY = 4.0
BURST = 15  # oversold sessions paid at once before each kill
BURST_SKU = "burst"
CHECKOUTS = 8  # checkouts made just before each kill


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


def workers_killed(target: Target) -> Timings:
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
            victim = max(service_workers(target.stack), key=lambda worker: _clients(worker, port))
            victim.send_signal(signal.SIGKILL)
            killed.add(victim.pid)
            target.cut_checkouts += sum(1 for answer in answers if answer.result() is None)
    last = time.monotonic()
    deadline = last + 60
    while time.monotonic() < deadline:
        fresh = [w for w in service_workers(target.stack) if w.pid not in killed]
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
