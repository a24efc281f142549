"""Random operation sequences against a plain Python model of the stock counters."""

from __future__ import annotations

from dataclasses import dataclass, field

import fakeredis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, invariant, rule
from redis.asyncio import Redis

from domain import errors
from domain.outcomes import (
    Committed,
    CommittedLate,
    Extended,
    Held,
    NotExtended,
    OutOfStock,
    OverCustomerLimit,
    OverHoldCap,
    Oversold,
    Released,
    ReleaseRefused,
)
from domain.reservations import CartLine
from reservation.core.inventory import Inventory
from tests.conftest import age_hold
from tests.invariants import assert_counts_hold, assert_hold_counts_hold
from tests.machines import RedisMachine

SKUS = ("red", "green", "blue")
LIMITS = {"red": 4, "green": 0, "blue": 0}
LIVE = ("held", "awaiting_payment")
# The most live holds one customer may have (RESERVATION_MAX_HOLDS_PER_CUSTOMER): low, so
# that sequences reach it, and free places again as holds end.
HOLD_CAP = 2
CUSTOMERS = ("ann", "bob")


@dataclass
class ModelReservation:
    items: dict[str, int]
    customer: str | None
    status: str = "held"
    oversold: bool = False  # a late payment refused: final


@dataclass
class Model:
    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKUS, 0))
    reservations: dict[str, ModelReservation] = field(default_factory=dict)

    def count(self, sku: str, statuses: tuple[str, ...], customer: str | None = None) -> int:
        return sum(
            r.items.get(sku, 0)
            for r in self.reservations.values()
            if r.status in statuses and (customer is None or r.customer == customer)
        )

    def reserved(self, sku: str) -> int:
        return self.count(sku, LIVE)

    def sold(self, sku: str) -> int:
        return self.count(sku, ("committed",))

    def available(self, sku: str) -> int:
        return self.total[sku] - self.reserved(sku) - self.sold(sku)

    def live_holds(self, customer: str) -> int:
        return sum(
            1 for r in self.reservations.values() if r.customer == customer and r.status in LIVE
        )


carts = st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 4)), min_size=1, max_size=4)
customers = st.sampled_from([None, *CUSTOMERS])


class InventoryMachine(RedisMachine):
    reservations = Bundle("reservations")

    prefix = "model"

    def __init__(self) -> None:
        super().__init__()
        self.inventory = Inventory(
            self.client, keys=self.keys, reclaim_batch=1000, max_holds_per_customer=HOLD_CAP
        )
        self.model = Model()
        for sku in SKUS:
            self.run(self.inventory.stock.set_stock(sku, 6, max_per_customer=LIMITS[sku]))
            self.model.total[sku] = 6

    @rule(target=reservations, cart=carts, customer=customers)
    def reserve(self, cart: list[tuple[str, int]], customer: str | None) -> str:
        outcome = self.run(self.inventory.holds.reserve(cart, customer_id=customer))
        summed: dict[str, int] = {}
        for sku, quantity in cart:
            summed[sku] = summed.get(sku, 0) + quantity
        expected: object = None
        for sku, quantity in summed.items():
            if quantity > self.model.available(sku):
                expected = OutOfStock(sku, quantity, self.model.available(sku))
                break
            # The limit bounds every reservation; a customer's also counts what they hold or bought.
            already = self.model.count(sku, (*LIVE, "committed"), customer) if customer else 0
            if LIMITS[sku] and already + quantity > LIMITS[sku]:
                expected = OverCustomerLimit(sku, LIMITS[sku], already)
                break
        # The cap on live holds comes after the cart's own refusals.
        if expected is None and customer and self.model.live_holds(customer) >= HOLD_CAP:
            expected = OverHoldCap(HOLD_CAP, self.model.live_holds(customer))
        if expected is not None:
            assert outcome == expected
            return "default.none-none-none-none"
        assert isinstance(outcome, Held), outcome
        assert outcome.reservation.items == tuple(CartLine(s, q) for s, q in summed.items())
        self.model.reservations[outcome.reservation.id] = ModelReservation(summed, customer)
        return outcome.reservation.id

    def known(self, reservation_id: str) -> ModelReservation | None:
        return self.model.reservations.get(reservation_id)

    @rule(reservation_id=reservations)
    def release(self, reservation_id: str) -> None:
        mine = self.known(reservation_id)
        if mine is None:
            try:
                self.run(self.inventory.holds.release(reservation_id))
            except errors.NotFound:
                return
            raise AssertionError("released an unknown reservation")
        outcome = self.run(self.inventory.holds.release(reservation_id))
        if mine.status == "committed":
            assert isinstance(outcome, ReleaseRefused)
        elif mine.status in LIVE:
            assert isinstance(outcome, Released)
            assert outcome.changed
            mine.status = "released"
        else:
            assert outcome == Released(outcome.reservation, changed=False)
            mine.status = "released"
        assert outcome.reservation.status == mine.status

    @rule(reservation_id=reservations)
    def commit(self, reservation_id: str) -> None:
        mine = self.known(reservation_id)
        if mine is None:
            return
        outcome = self.run(self.inventory.holds.commit(reservation_id))
        if mine.status in LIVE:
            assert isinstance(outcome, Committed)
            assert not outcome.repeated
            mine.status = "committed"
        elif mine.status == "committed":
            assert isinstance(outcome, (Committed, CommittedLate))
        elif mine.oversold:
            assert isinstance(outcome, Oversold)
        else:
            short = [s for s, q in mine.items.items() if q > self.model.available(s)]
            if short:
                assert isinstance(outcome, Oversold)
                assert outcome.sku == short[0]
                mine.status, mine.oversold = "released", True
            else:
                assert isinstance(outcome, CommittedLate)
                mine.status = "committed"

    @rule(reservation_id=reservations)
    def expire(self, reservation_id: str) -> None:
        mine = self.known(reservation_id)
        if mine is None or mine.status not in LIVE:
            return
        self.run(age_hold(self.client, self.keys, reservation_id))
        mine.status = "expired"

    @rule(reservation_id=reservations)
    def extend(self, reservation_id: str) -> None:
        mine = self.known(reservation_id)
        if mine is None:
            return
        outcome = self.run(self.inventory.holds.extend(reservation_id, hold_seconds=3600))
        if mine.status in LIVE:
            assert isinstance(outcome, Extended)
            mine.status = "awaiting_payment"
        else:
            assert isinstance(outcome, NotExtended)
        assert outcome.reservation.status == mine.status

    @rule(sku=st.sampled_from(SKUS), total=st.integers(0, 12))
    def set_stock(self, sku: str, total: int) -> None:
        floor = self.model.reserved(sku) + self.model.sold(sku)
        if total < floor:
            try:
                self.run(self.inventory.stock.set_stock(sku, total, keep_limit=True))
            except errors.StockBelowCommitted:
                return
            raise AssertionError("stock went below reserved + sold")
        level = self.run(self.inventory.stock.set_stock(sku, total, keep_limit=True))
        self.model.total[sku] = total
        assert level.max_per_customer == (LIMITS[sku] or None)

    @invariant()
    def counters_match_the_model(self) -> None:
        for level in self.run(self.inventory.stock.levels(list(SKUS))):
            assert_counts_hold(level)
            assert (level.total, level.reserved, level.sold) == (
                self.model.total[level.sku],
                self.model.reserved(level.sku),
                self.model.sold(level.sku),
            )
        # Each customer's count of live holds (kept beside the holds by every script that adds
        # or removes one; read after the snapshot above reclaimed the lapsed ones) is exact:
        # the members of `holds` that are theirs, and the model's live holds.
        counts = self.run(assert_hold_counts_hold(self.client, self.keys.pool("default")))
        for customer in CUSTOMERS:
            assert counts[customer] == self.model.live_holds(customer), customer


class FakeRedisInventoryMachine(InventoryMachine):
    def make_client(self) -> Redis:
        client: Redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        return client


machine_settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestInventoryModel = InventoryMachine.TestCase
TestInventoryModel.settings = machine_settings
TestInventoryModelOnFakeRedis = FakeRedisInventoryMachine.TestCase
TestInventoryModelOnFakeRedis.settings = machine_settings
