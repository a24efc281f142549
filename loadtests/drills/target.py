"""What a fault acts on and watches: the drill's own stores, the stack's processes, and a probe
that asks for a hold every PROBE_EVERY seconds and times every answer."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.servers import RedisServer
from loadtests.sale_stack import Stack
from reservation.stores.embedded import EmbeddedMongo

PROBE_EVERY = 0.1
# What a fault's injection gives back: when it began, when it ended, and the seconds from then
# until the system answered as it should again (None: it never did).
Timings = tuple[float, float, float | None]


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


@contextlib.contextmanager
def own_stores(workdir: Path, redis_args: tuple[str, ...]) -> Iterator[Stores]:
    """A redis-server (started with `redis_args`) and an nx-27017 in `workdir`, stopped after."""
    stores = Stores(RedisServer(workdir / "redis", *redis_args), EmbeddedMongo(workdir / "mongo"))
    try:
        stores.redis.start()
        stores.mongo.start()
        yield stores
    finally:
        stores.mongo.stop()
        stores.redis.stop()


def first_answer_after(probe: Probe, since: float, ok: tuple[int, ...]) -> float | None:
    """Seconds from `since` until the probe got an `ok` answer again (None: never, in 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for at, status, took in list(probe.answers):
            if at >= since and status in ok:
                return at + took - since
        time.sleep(0.05)
    return None
