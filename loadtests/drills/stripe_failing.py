"""The stripe-failing drill: during a checkout rush Stripe answers slowly, then 500s, then 429s,
then not at all; every checkout meanwhile is a 201 or a 503 with Retry-After, in bound."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from loadtests.drills.target import Target, Timings

# Stripe's faults during the checkout rush, each for PHASE_SECONDS: answers that take seconds,
# 500s, 429s, then no answer at all.
STRIPE_PHASES: tuple[tuple[str, float | None], ...] = (
    ("delay", 2.5),
    ("500", None),
    ("429", None),
    ("hang", 30.0),
)
PHASE_SECONDS = 4.0
STRIPE_BOUND = 5.0  # the drill's STRIPE_TIMEOUT_SECONDS: the longest a checkout may wait


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


def stripe_failing(target: Target) -> Timings:
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
