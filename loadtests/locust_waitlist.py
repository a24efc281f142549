"""The `waitlist` scenario of the flash sale: the hot SKU sells out to a first wave, buyers line
up on its waiting list, and the units that come back go to them in line order while a public
crowd keeps asking for the SKU (`python -m loadtests.run_flash_sale --waitlist`).

- `WaitlistFirst` (exactly `--hot-stock` users): one hold of the hot SKU each, as soon as they
  arrive; then a third pay for it (check-out, paid on the Stripe simulator), a third give it back
  (`DELETE /v1/reservations/{id}`) after 1-4 s and a third let it lapse (the rehearsal runs with
  short hold seconds). Every unit given back or lapsed goes to the head of the line.
- `Waiters`: look at the product until it is sold out (`available` 0), join its waiting list
  (`POST /v1/waitlist/{sku}`, quantity 1, as their own customer with their token; `409 on_sale`:
  it was not sold out yet, look again), then poll their entry
  (`GET /v1/waitlist/{sku}/{customer}`) with backoff (1 s, x1.5, at most 4 s). When `offered`,
  by `--offer-mix`: buy (check out by `reservation_id`, pay `paid`, wait for the order), give
  it back, or let it lapse (the rehearsal runs with a short RESERVATION_OFFER_SECONDS); they keep
  polling until the entry ends (`bought`, `lapsed`, `left`).
- `WaitlistCrowd`: keeps reserving the hot SKU every 0.3-1 s; a hold it gets (only while nobody
  waits: the verifier checks that) is given back at once. `crowd reserve: sold out` counts the
  refusals.

Request names: `waitlist join` (201), `waitlist join: again` (200), `waitlist join: on sale`
(409, expected), `waitlist poll` and `waitlist poll: <status>` for the others, `offer checkout`,
`offer give back`, `first reserve`, `first give back`, `crowd reserve` (`: sold out`),
`crowd give back`; a `429` is waited out (its `Retry-After`) under `…: rate limited`; anything
else unexpected is a failure.
"""

from __future__ import annotations

import random
import time
from typing import Any

from locust import between, tag, task

from loadtests.locust_products import CATALOG
from loadtests.locust_sale import Paying, answered

OUTCOMES = ("buy", "give_back", "lapse")
POLL_FIRST, POLL_GROWTH, POLL_MOST = 1.0, 1.5, 4.0
ENDED = ("bought", "lapsed", "left")


def offer_mix(text: str) -> tuple[list[str], list[float]]:
    """`buy=60,give_back=20,lapse=20` as outcomes and weights; unknown names are refused."""
    names, weights = [], []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in OUTCOMES:
            raise ValueError(f"unknown offer outcome {name!r}: one of {', '.join(OUTCOMES)}")
        names.append(name)
        weights.append(float(weight or 1))
    if not names or sum(weights) <= 0:
        raise ValueError("the offer mix needs at least one outcome with a weight")
    return names, weights


class WaitlistUser(Paying):
    """What the waiting-list users share: answers a 429 waits out, and giving a hold back."""

    abstract = True

    def waited_out(self, response: Any, request: str) -> bool:
        """A 429: named as a refusal, its Retry-After waited out; True. Else False."""
        if response.status_code != 429:
            return False
        response.request_meta["name"] = f"{request}: rate limited"
        response.success()
        time.sleep(float(response.headers.get("Retry-After") or 1))
        return True

    def give_back(self, reservation_id: str, name: str) -> None:
        """DELETE /v1/reservations/{id}: 200 (released, or it had lapsed already)."""
        while True:
            with self.client.delete(
                f"/v1/reservations/{reservation_id}",
                headers=self.authorization(),
                name=name,
                catch_response=True,
            ) as response:
                if response.status_code == 200:
                    return
                if not self.waited_out(response, name):
                    response.failure(answered(response))
                    return

    def hold(self, name: str) -> tuple[str | None, str]:
        """One unit of the hot SKU for this customer: its reservation id (None when refused,
        with the refusal's error code)."""
        return self.reserve_named([(CATALOG.hot, 1)], name)

    def reserve_named(self, lines: list[tuple[str, int]], name: str) -> tuple[str | None, str]:
        while True:
            reservation_id, code = self.reserve_as(lines, self.customer_id, name)
            if code != "rate_limited":
                return reservation_id, code
            time.sleep(1.0)


class WaitlistFirst(WaitlistUser):
    """The first wave: a hold each, then pay, give back or let lapse (a third each)."""

    weight = 1  # with --tags waitlist, exactly --hot-stock of them (locustfile.choose_scenarios)

    @tag("waitlist")
    @task
    def first_hold(self) -> None:
        if self.gone:
            return
        reservation_id, _ = self.hold("first reserve")
        if reservation_id is not None:
            choice = random.choice(("pay", "give_back", "lapse"))
            if choice == "pay":
                session = self.checkout(reservation_id)
                if session is not None:
                    self.pay(session, "paid")
                    self.await_final(reservation_id, session, "paid")
            elif choice == "give_back":
                time.sleep(random.uniform(1.0, 4.0))
                self.give_back(reservation_id, "first give back")
        self.leave()


class Waiters(WaitlistUser):
    """A buyer who finds the SKU sold out, joins its line and takes (or not) the offer."""

    weight = 4
    pause = between(0.5, 1.5)

    @tag("waitlist")
    @task
    def wait_in_line(self) -> None:
        if self.gone:
            return
        self.outcomes, self.weights = offer_mix(self.parsed.offer_mix)
        state = None
        while state is None:
            if self.sold_out():
                state = self.join()
            if state is None:
                time.sleep(float(self.pause()))
        self.follow(state)
        self.leave()

    def sold_out(self) -> bool:
        """The product view says nothing is available to the public now."""
        with self.client.get(
            f"/v1/products/{CATALOG.hot}", name="waitlist product", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(answered(response))
                return False
            return int(response.json().get("available", 1)) == 0

    def join(self) -> dict[str, Any] | None:
        """POST /v1/waitlist/{sku}: the entry, or None (on sale again, or a failure)."""
        body = {"quantity": 1, "customer_id": self.customer_id}
        while True:
            with self.client.post(
                f"/v1/waitlist/{CATALOG.hot}",
                json=body,
                headers=self.authorization(),
                name="waitlist join",
                catch_response=True,
            ) as response:
                if response.status_code in (200, 201):
                    if response.status_code == 200:
                        response.request_meta["name"] = "waitlist join: again"
                    found: dict[str, Any] = response.json()
                    return found
                if response.status_code == 409 and _code(response) == "on_sale":
                    response.request_meta["name"] = "waitlist join: on sale"
                    response.success()
                    return None
                if not self.waited_out(response, "waitlist join"):
                    response.failure(answered(response))
                    return None

    def follow(self, state: dict[str, Any]) -> None:
        """Poll the entry with backoff until it ends; act on the offer once it comes."""
        pause, acted = POLL_FIRST, False
        while state.get("status") not in ENDED:
            if state.get("status") == "offered" and not acted:
                acted = True
                self.take_offer(str(state["offer"]["reservation_id"]))
                pause = POLL_FIRST
            time.sleep(pause)
            pause = min(pause * POLL_GROWTH, POLL_MOST)
            found = self.poll_entry()
            if found is None:
                return
            state = found

    def take_offer(self, reservation_id: str) -> None:
        outcome = random.choices(self.outcomes, self.weights)[0]
        if outcome == "buy":
            session = self.checkout(reservation_id, name="offer checkout")
            if session is not None:
                self.pay(session, "paid")
                self.await_final(reservation_id, session, "paid")
        elif outcome == "give_back":
            time.sleep(random.uniform(0.5, 2.0))
            self.give_back(reservation_id, "offer give back")

    def poll_entry(self) -> dict[str, Any] | None:
        """GET /v1/waitlist/{sku}/{customer}: the entry, or None on a failure."""
        while True:
            with self.client.get(
                f"/v1/waitlist/{CATALOG.hot}/{self.customer_id}",
                headers=self.authorization(),
                name="waitlist poll",
                catch_response=True,
            ) as response:
                if response.status_code == 200:
                    found: dict[str, Any] = response.json()
                    if found.get("status") != "waiting":
                        response.request_meta["name"] = f"waitlist poll: {found.get('status')}"
                    return found
                if not self.waited_out(response, "waitlist poll"):
                    response.failure(answered(response))
                    return None


class WaitlistCrowd(WaitlistUser):
    """The public: keeps asking for the hot SKU; gives back at once whatever it gets."""

    weight = 1
    pause = between(0.3, 1.0)

    @tag("waitlist")
    @task
    def grab(self) -> None:
        reservation_id, _ = self.hold("crowd reserve")
        if reservation_id is not None:
            self.give_back(reservation_id, "crowd give back")


def _code(response: Any) -> str:
    try:
        return str(response.json().get("error") or "")
    except (ValueError, AttributeError):
        return ""
