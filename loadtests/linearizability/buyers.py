"""What one recorded client does, one call at a time: reserve carts (half with an
Idempotency-Key, some retries of a key it used), release, read its reservations and the
products, check its holds out and pay for them (or let the payment fail or the session expire)
through the Stripe simulator. Every call goes through the recording (recording.py), which
notes when it was invoked, when and how it was answered."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtests.linearizability.answers import (
    call,
    checkout_result,
    read_product_result,
    read_reservation_result,
    release_result,
    reserve_result,
)
from loadtests.linearizability.recording import Recording

CUSTOMERS = tuple(f"cus-{n}" for n in range(6))
# How often each call is made: a reserve most, reads often, releases often enough that held
# units come back and the refusals keep changing their mind.
WEIGHTS = {
    "reserve": 35,
    "release": 15,
    "read_reservation": 10,
    "read_product": 20,
    "checkout": 10,
    "pay": 10,
}
# Paid (checkout.session.completed) or the session expired (checkout.session.expired: the
# hold is released). A declined card (payment_intent.payment_failed) changes nothing - the
# buyer may try another card in the same session - so it is not asked for.
PAY_OUTCOMES = ("paid", "expired")
PAY_WEIGHTS = (6, 4)
SIM_PATHS = {"paid": "complete", "expired": "expire"}


@dataclass
class Own:
    """A reservation this client holds (as far as it knows) and its Checkout Session."""

    pool: str
    items: list[list[Any]]
    session: str | None = None


@dataclass
class Buyer:
    """One client: its random choices, its holds, the keys it used."""

    process: int
    rng: random.Random
    recording: Recording
    http: httpx.AsyncClient
    sim: httpx.AsyncClient
    held: dict[str, Own] = field(default_factory=dict)
    # Reservations it released, paid for or gave up on: a retry of their key, which answers
    # them again (held while their payment's webhook is on its way), does not take them back.
    done: set[str] = field(default_factory=set)
    keys: list[tuple[str, str, list[list[Any]], str | None]] = field(default_factory=list)

    async def act(self) -> None:
        """One call, chosen at random (a reserve when there is nothing to act on)."""
        kinds, weights = zip(*WEIGHTS.items(), strict=True)
        kind = self.rng.choices(kinds, weights)[0]
        if kind in ("release", "checkout") and not self.held:
            kind = "reserve"
        if kind == "pay" and not any(own.session for own in self.held.values()):
            kind = "checkout" if self.held else "reserve"
        if kind == "read_reservation" and not self.recording.known:
            kind = "read_product"
        await getattr(self, kind)()

    def _cart(self) -> tuple[str, list[list[Any]]]:
        """A pool and a cart in it: mostly one line of 1 or 2 units, sometimes two SKUs."""
        catalog = self.recording.catalog
        pool = self.rng.choice(catalog.crowd)
        skus = sorted(catalog.pools[pool])
        if len(skus) > 1 and self.rng.random() < 0.3:
            return pool, [[sku, 1] for sku in sorted(self.rng.sample(skus, 2))]
        return pool, [[self.rng.choice(skus), 2 if self.rng.random() < 0.2 else 1]]

    async def reserve(self) -> None:
        key: str | None
        if self.keys and self.rng.random() < 0.15:
            key, pool, items, customer = self.rng.choice(self.keys)  # a retry of a key
        else:
            pool, items = self._cart()
            customer = self.rng.choice(CUSTOMERS) if self.rng.random() < 0.75 else None
            key = str(uuid.UUID(int=self.rng.getrandbits(128))) if self.rng.random() < 0.5 else None
            if key is not None:
                self.keys.append((key, pool, items, customer))
        body: dict[str, Any] = {"items": [{"sku": s, "quantity": q} for s, q in items]}
        if customer is not None:
            body["customer_id"] = customer
        headers = self.recording.headers(customer)
        if key:
            headers["Idempotency-Key"] = key
        args = {"items": items, "customer_id": customer, "key": key}
        answer = await self.recording.record(
            self.process,
            pool,
            "reserve",
            args,
            call(self.http, "POST", "/v1/reservations", json=body, headers=headers),
            reserve_result,
        )
        if answer.status == 201 and answer.body.get("status") == "held":
            reservation = str(answer.body["id"])
            self.recording.learn(reservation, customer)
            if reservation not in self.done:
                self.held.setdefault(reservation, Own(pool, items))

    async def release(self) -> None:
        reservation = self.rng.choice(sorted(self.held))
        answer = await self.recording.record(
            self.process,
            self.held[reservation].pool,
            "release",
            {"id": reservation},
            call(
                self.http,
                "DELETE",
                f"/v1/reservations/{reservation}",
                headers=self.recording.headers_of(reservation),
            ),
            release_result,
        )
        if answer.status in (200, 404, 409):
            self._done(reservation)  # released, paid, or gone: nothing more to do with it

    async def read_reservation(self) -> None:
        reservation = self.rng.choice(self.recording.known)
        await self.recording.record(
            self.process,
            reservation.split(".", 1)[0],
            "read_reservation",
            {"id": reservation},
            call(
                self.http,
                "GET",
                f"/v1/reservations/{reservation}",
                headers=self.recording.headers_of(reservation),
            ),
            read_reservation_result,
        )

    async def read_product(self) -> None:
        catalog = self.recording.catalog
        pool = self.rng.choice(catalog.crowd)
        sku = self.rng.choice(sorted(catalog.pools[pool]))
        await self.recording.record(
            self.process,
            pool,
            "read_product",
            {"sku": sku},
            call(self.http, "GET", f"/v1/products/{sku}"),
            read_product_result,
        )

    async def checkout(self) -> None:
        reservation = self.rng.choice(sorted(self.held))
        own = self.held[reservation]
        answer = await self.recording.record(
            self.process,
            own.pool,
            "checkout",
            {"id": reservation},
            call(
                self.http,
                "POST",
                "/v1/checkout",
                json={"reservation_id": reservation},
                headers=self.recording.headers_of(reservation),
            ),
            checkout_result,
        )
        if answer.status == 201:
            own.session = str(answer.body["checkout_session_id"])
        elif answer.status in (404, 409):
            self._done(reservation)

    async def pay(self) -> None:
        """Ask the simulator to pay (or fail the payment, or expire the session) of a held
        reservation's session. Paid only while the units sold leave some for the others, so
        that a long run keeps contending for stock rather than selling it all."""
        reservation = self.rng.choice(sorted(r for r, own in self.held.items() if own.session))
        own = self.held[reservation]
        outcome = self.rng.choices(PAY_OUTCOMES, PAY_WEIGHTS)[0]
        if outcome == "paid" and not self.recording.may_sell(own.items):
            outcome = "expired"
        assert own.session is not None
        path = f"/_sim/sessions/{own.session}/{SIM_PATHS[outcome]}"
        body = {"payment_status": "paid"} if outcome == "paid" else {}
        args = {"id": reservation, "session": own.session, "outcome": outcome}
        asked = await self.recording.record_pay(
            self.process, own.pool, args, call(self.sim, "POST", path, json=body)
        )
        if outcome == "paid" and asked:
            self.recording.sell(own.items)
        # Its webhook is on its way (or the session is no longer open): this client does no
        # more with it (a release racing its own payment's delivery is Stripe's word against
        # the client's).
        self._done(reservation)

    def _done(self, reservation: str) -> None:
        del self.held[reservation]
        self.done.add(reservation)
