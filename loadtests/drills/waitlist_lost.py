"""Redis lost with buyers in a waiting list (issue 26's durability), under the sale's load.

Beside the sale, the drill sells out a SKU of its own, puts buyers in its waiting list (some
offered units that were given back), then kills Redis and starts it again empty. The guarantee
(docs/design.md, *Waiting lists*): the service rebuilds the line from MongoDB's joins, in join
order, in the same call that rebuilds the counters; the buyers whose offers were lost with
their holds are back at their places; the units the lost holds freed are offered to the line's
head before any public buyer gets one.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from harness.customer_tokens import bearer, mint
from loadtests.drills.store_faults import outage
from loadtests.drills.target import Target, Timings, first_answer_after

LINE_SKU = "waitlisted"
STOCK = 5
IN_LINE = 40
GIVEN_BACK = 2  # first holds given back before the loss: their units offered to the first two
REBUILT_WITHIN = 60.0  # seconds after Redis is back for the line to read as rebuilt


def waiter(number: int) -> str:
    return f"waiter-{number:03d}"


def redis_lost_with_a_line(target: Target) -> Timings:
    """The line set up, Redis killed for 3 s and started empty, the line checked."""
    stack = target.stack
    admin = {"Authorization": f"Bearer {stack.admin_token}"}

    def as_buyer(customer: str) -> dict[str, str]:
        return bearer(mint(customer, stack.customer_token_secret))

    with httpx.Client(base_url=stack.service_url, timeout=30) as http:
        product = {"name": "Waitlisted", "price": 1500, "currency": "eur", "stock": STOCK}
        http.put(f"/v1/products/{LINE_SKU}", json=product, headers=admin).raise_for_status()
        holds = []
        for number in range(STOCK):
            customer = f"first-{number}"
            held = http.post(
                "/v1/reservations",
                json={"items": [{"sku": LINE_SKU, "quantity": 1}]},
                headers=as_buyer(customer),
            )
            held.raise_for_status()
            holds.append((customer, held.json()["id"]))
        for number in range(IN_LINE):
            joined = http.post(
                f"/v1/waitlist/{LINE_SKU}", json={"quantity": 1}, headers=as_buyer(waiter(number))
            )
            joined.raise_for_status()
        for customer, reservation_id in holds[:GIVEN_BACK]:
            given = http.delete(f"/v1/reservations/{reservation_id}", headers=as_buyer(customer))
            given.raise_for_status()
        before = _line(http, admin)
    expected_before = [waiter(n) for n in range(GIVEN_BACK, IN_LINE)]
    if before is None or before != expected_before:
        target.problems.append(f"the waiting list before the loss: {before}")

    redis_server = target.stores.redis
    began, back = outage(redis_server.stop, redis_server.start, 3)
    recovered = first_answer_after(target.probe, back, ok=(201, 409))
    target.problems.extend(_rebuilt(stack.service_url, admin, as_buyer, back))
    return began, back, recovered


def _line(http: httpx.Client, admin: dict[str, str]) -> list[str] | None:
    """The customers in the line, head first (None while the service cannot answer)."""
    try:
        answer = http.get(f"/v1/waitlist/{LINE_SKU}", headers=admin)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    body: dict[str, Any] = answer.json()
    return [entry["customer_id"] for entry in body["line"]]


def _rebuilt(url: str, admin: dict[str, str], as_buyer: Any, back: float) -> list[str]:
    """What is wrong with the line after the rebuild (nothing: [])."""
    # Every hold was lost: all STOCK units are free and go to the first STOCK of the line,
    # the two whose offers were lost first, at their places.
    expected = [waiter(n) for n in range(STOCK, IN_LINE)]
    problems = []
    with httpx.Client(base_url=url, timeout=30) as http:
        line = _line(http, admin)
        while line != expected and time.monotonic() < back + REBUILT_WITHIN:
            time.sleep(0.25)
            line = _line(http, admin)
        if line != expected:
            problems.append(f"the line after the rebuild: {line}, not {expected[:3]}…")
        for number in range(STOCK):
            entry = http.get(f"/v1/waitlist/{LINE_SKU}/{waiter(number)}", headers=admin)
            status = entry.json().get("status") if entry.status_code == 200 else entry.status_code
            if status != "offered":
                problems.append(f"{waiter(number)} after the rebuild: {status}, not offered")
        public = http.post(
            "/v1/reservations",
            json={"items": [{"sku": LINE_SKU, "quantity": 1}]},
            headers=as_buyer("fast-bot"),
        )
        if public.status_code != 409:
            problems.append(f"a public hold of {LINE_SKU} while a line waits: {public.status_code}")
    return problems
