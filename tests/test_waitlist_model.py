"""Random operation sequences of the waiting list (issue 26) against a plain Python model:
public reserves, releases, payments, lapses and stock changes interleaved with joins and
leaves, and the offers the scripts make of every unit that comes back. Invariants: reserved +
sold <= total, offers only to customers in line, the line's order kept, no unit public while
the line is not empty, a unit never offered to two customers."""

from __future__ import annotations

from dataclasses import dataclass, field

import fakeredis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, invariant, rule
from redis.asyncio import Redis

from domain import errors
from domain.outcomes import Committed, CommittedLate, Held, OutOfStock, Oversold, Released
from reservation.core.inventory import Inventory
from tests.conftest import age_hold
from tests.invariants import assert_counts_hold, assert_hold_counts_hold
from tests.machines import RedisMachine

SKUS = ("red", "blue")
CUSTOMERS = ("ann", "bob", "cy", "dee")
LIVE = ("held", "awaiting_payment")


@dataclass
class Hold:
    sku: str
    quantity: int
    customer: str
    status: str = "held"
    offered_to: str | None = None  # the waiter this hold was offered to (None: a public hold)


@dataclass
class Model:
    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKUS, 0))
    holds: dict[str, Hold] = field(default_factory=dict)
    # Per SKU, the line in order: (customer, quantity).
    lines: dict[str, list[tuple[str, int]]] = field(
        default_factory=lambda: {sku: [] for sku in SKUS}
    )
    # (sku, customer) -> status of their latest entry
    entries: dict[tuple[str, str], str] = field(default_factory=dict)

    def units(self, sku: str, statuses: tuple[str, ...]) -> int:
        return sum(h.quantity for h in self.holds.values() if h.sku == sku and h.status in statuses)

    def free(self, sku: str) -> int:
        return self.total[sku] - self.units(sku, LIVE) - self.units(sku, ("committed",))

    def public(self, sku: str) -> int:
        return 0 if self.lines[sku] else self.free(sku)

    def hand_off(self, sku: str) -> list[str]:
        """The offers the scripts must make now, head first, strict order: their customers."""
        offered = []
        while self.lines[sku] and self.lines[sku][0][1] <= self.free(sku):
            customer, quantity = self.lines[sku].pop(0)
            self.entries[(sku, customer)] = "offered"
            offered.append(customer)
            # Its id is learnt from the service (the machine reads the entry).
            self.holds[f"pending:{sku}:{customer}"] = Hold(
                sku, quantity, customer, "held", customer
            )
        return offered


class WaitlistMachine(RedisMachine):
    holds = Bundle("holds")

    prefix = "wlmodel"

    def __init__(self) -> None:
        super().__init__()
        self.inventory = Inventory(self.client, keys=self.keys, reclaim_batch=1000)
        self.model = Model()
        for sku in SKUS:
            self.run(self.inventory.stock.set_stock(sku, 3))
            self.model.total[sku] = 3

    def offers_made(self, sku: str) -> None:
        """Units came back: the model's offers, matched to the ids the service gave them."""
        for customer in self.model.hand_off(sku):
            entry = self.run(self.inventory.waitlists.read(sku, customer))
            assert entry.status == "offered", (sku, customer, entry)
            assert entry.offer is not None
            assert entry.offer.reservation_id not in self.model.holds  # never offered twice
            hold = self.model.holds.pop(f"pending:{sku}:{customer}")
            self.model.holds[entry.offer.reservation_id] = hold

    @rule(target=holds, sku=st.sampled_from(SKUS), quantity=st.integers(1, 3))
    def reserve(self, sku: str, quantity: int) -> str:
        outcome = self.run(self.inventory.holds.reserve([(sku, quantity)], customer_id="crowd"))
        if quantity > self.model.public(sku):
            assert isinstance(outcome, OutOfStock), outcome
            assert outcome.available == self.model.public(sku)
            return "default.none-none-none-none"
        assert isinstance(outcome, Held), outcome
        self.model.holds[outcome.reservation.id] = Hold(sku, quantity, "crowd")
        return outcome.reservation.id

    @rule(sku=st.sampled_from(SKUS), customer=st.sampled_from(CUSTOMERS), q=st.integers(1, 3))
    def join(self, sku: str, customer: str, q: int) -> None:
        status = self.model.entries.get((sku, customer))
        try:
            entry = self.run(self.inventory.waitlists.join(sku, customer, q))
        except errors.OnSale:
            assert status not in ("waiting", "offered")
            assert self.model.public(sku) > 0
            return
        if status in ("waiting", "offered"):
            assert (entry.created, entry.status) == (False, status)
            return
        assert self.model.public(sku) == 0
        assert (entry.created, entry.status) == (True, "waiting")
        self.model.lines[sku].append((customer, q))
        self.model.entries[(sku, customer)] = "waiting"
        assert entry.position == len(self.model.lines[sku])

    @rule(sku=st.sampled_from(SKUS), customer=st.sampled_from(CUSTOMERS))
    def leave(self, sku: str, customer: str) -> None:
        status = self.model.entries.get((sku, customer))
        if status is None:
            try:
                self.run(self.inventory.waitlists.leave(sku, customer))
            except errors.NotInLine:
                return
            raise AssertionError("left a line never joined")
        entry = self.run(self.inventory.waitlists.leave(sku, customer))
        if status != "waiting":
            assert entry.status == status
            return
        assert entry.status == "left"
        self.model.lines[sku] = [w for w in self.model.lines[sku] if w[0] != customer]
        self.model.entries[(sku, customer)] = "left"
        self.offers_made(sku)

    def chosen(self, drawn: str, use_offer: bool, index: int) -> str | None:
        """A public hold drawn from the bundle, or one of the offers made (by index)."""
        if not use_offer:
            return drawn if drawn in self.model.holds else None
        offers = sorted(rid for rid, h in self.model.holds.items() if h.offered_to)
        return offers[index % len(offers)] if offers else None

    @rule(drawn=holds, use_offer=st.booleans(), index=st.integers(0, 20))
    def release(self, drawn: str, use_offer: bool, index: int) -> None:
        rid = self.chosen(drawn, use_offer, index)
        if rid is None:
            return
        hold = self.model.holds[rid]
        outcome = self.run(self.inventory.holds.release(rid))
        if hold.status not in LIVE:
            return
        assert isinstance(outcome, Released), outcome
        hold.status = "released"
        if hold.offered_to:
            self.model.entries[(hold.sku, hold.offered_to)] = "left"
        self.offers_made(hold.sku)

    @rule(drawn=holds, use_offer=st.booleans(), index=st.integers(0, 20))
    def pay(self, drawn: str, use_offer: bool, index: int) -> None:
        rid = self.chosen(drawn, use_offer, index)
        if rid is None:
            return
        hold = self.model.holds[rid]
        outcome = self.run(self.inventory.holds.commit(rid))
        if hold.status in LIVE:
            assert isinstance(outcome, Committed), outcome
            hold.status = "committed"
            if hold.offered_to:
                self.model.entries[(hold.sku, hold.offered_to)] = "bought"
        elif hold.status == "committed":
            assert isinstance(outcome, (Committed, CommittedLate)), outcome
        elif hold.status == "refused":
            assert isinstance(outcome, Oversold), outcome
        else:
            # A late payment (the hold lapsed or was given back) takes free units, even those
            # kept for a head that does not fit yet: a payment made is honoured before a wish.
            if hold.quantity <= self.model.free(hold.sku):
                assert isinstance(outcome, CommittedLate), outcome
                hold.status = "committed"
            else:
                assert isinstance(outcome, Oversold), outcome
                hold.status = "refused"

    @rule(drawn=holds, use_offer=st.booleans(), index=st.integers(0, 20))
    def lapse(self, drawn: str, use_offer: bool, index: int) -> None:
        rid = self.chosen(drawn, use_offer, index)
        if rid is None or self.model.holds[rid].status not in LIVE:
            return
        hold = self.model.holds[rid]
        self.run(age_hold(self.client, self.keys, rid))
        self.run(self.inventory.holds.reclaim("default"))
        hold.status = "expired"
        if hold.offered_to:
            self.model.entries[(hold.sku, hold.offered_to)] = "lapsed"
        self.offers_made(hold.sku)

    @rule(sku=st.sampled_from(SKUS), more=st.integers(0, 3))
    def restock_more(self, sku: str, more: int) -> None:
        total = self.model.total[sku] + more
        self.run(self.inventory.stock.set_stock(sku, total, keep_limit=True))
        self.model.total[sku] = total
        self.offers_made(sku)

    @invariant()
    def the_service_agrees_with_the_model(self) -> None:
        for level in self.run(self.inventory.stock.levels(list(SKUS))):
            assert_counts_hold(level)
            sku = level.sku
            assert (level.total, level.reserved, level.sold) == (
                self.model.total[sku],
                self.model.units(sku, LIVE),
                self.model.units(sku, ("committed",)),
            )
            assert level.waiting == len(self.model.lines[sku])
            assert level.available == self.model.public(sku)
            line = self.run(self.inventory.waitlists.line(sku))
            assert [(w.customer_id, w.quantity) for w in line.line] == self.model.lines[sku]
            live_offers = [h for h in self.model.holds.values() if h.offered_to and h.sku == sku]
            assert line.offers == sum(1 for h in live_offers if h.status in LIVE)
            for (entry_sku, customer), status in self.model.entries.items():
                if entry_sku == sku:
                    entry = self.run(self.inventory.waitlists.read(sku, customer))
                    assert entry.status == status, (sku, customer)
        self.run(assert_hold_counts_hold(self.client, self.keys.pool("default")))


class FakeRedisWaitlistMachine(WaitlistMachine):
    def make_client(self) -> Redis:
        client: Redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        return client


machine_settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestWaitlistModel = WaitlistMachine.TestCase
TestWaitlistModel.settings = machine_settings
TestWaitlistModelOnFakeRedis = FakeRedisWaitlistMachine.TestCase
TestWaitlistModelOnFakeRedis.settings = machine_settings
