"""The hold use case called directly (reservation/usecases/hold.py): the sold-out memory, then
the rate limits, then the Idempotency-Key's claim, then the reserve script, then the metrics,
on every backend. Both POST /v1/reservations and POST /v1/checkout with items go through it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from domain import errors
from domain.outcomes import Held, Released
from reservation.core.idempotency import IdempotencyKeys
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace
from reservation.core.ratelimit import CUSTOMER, IP, RateLimit, RateLimiter, subject_digest
from reservation.lua.library import RedisClient
from reservation.metrics import Metrics
from reservation.usecases.hold import Hold, HoldRequest
from tests.conftest import MakeInventory

ADDRESS = "192.0.2.1"
MakeHold = Callable[..., Awaitable[Hold]]


@pytest.fixture
def make_hold(make_inventory: MakeInventory, client: RedisClient, keyspace: KeySpace) -> MakeHold:
    async def make(
        *,
        per_ip: int = 0,
        per_customer: int = 0,
        inventory: Inventory | None = None,
        **options: Any,
    ) -> Hold:
        limiter = RateLimiter(
            client,
            keys=keyspace,
            per_ip=RateLimit(per_ip, 60 if per_ip else 0),
            per_customer=RateLimit(per_customer, 60 if per_customer else 0),
        )
        return Hold(
            inventory=inventory or await make_inventory(**options),
            idempotency=IdempotencyKeys(client, keyspace),
            rate_limiter=limiter,
            metrics=Metrics(),
        )

    return make


async def refused(hold: Hold, request: HoldRequest) -> tuple[str, dict[str, Any]]:
    with pytest.raises(errors.ReservationError) as refusal:
        await hold(request)
    return refusal.value.code, refusal.value.details


def out_of_stock(sku: str, requested: int, available: int) -> tuple[str, dict[str, Any]]:
    return "insufficient_stock", {"sku": sku, "requested": requested, "available": available}


def counted(hold: Hold, outcome: str) -> float:
    return hold.metrics.sample("reservation_reservations_total", outcome=outcome)


async def logged(hold: Hold, scope: str, subject: str) -> int:
    """How many requests of `subject` the limit of `scope` has counted."""
    limiter = hold.rate_limiter
    count: int = await hold.inventory.client.zcard(
        limiter.keys.rate_log(scope, subject_digest(subject))
    )
    return count


async def test_sold_out_memory_answers_refusals_without_redis(
    make_inventory: MakeInventory, make_hold: MakeHold
) -> None:
    inventory = await make_inventory(sold_out_seconds=0.5)
    hold = await make_hold(inventory=inventory)
    # The memory's clock is the test's: on the wall clock, a busy machine could spend the
    # half second before the second refusal below, and Redis would answer it instead.
    now = [0.0]
    inventory.sold_out.clock = lambda: now[0]
    other_process = await make_inventory()
    await inventory.stock.set_stock("a", 1)
    rid = (await hold(HoldRequest([("a", 1)]))).reservation.id
    assert await refused(hold, HoldRequest([("a", 1)])) == out_of_stock("a", 1, 0)
    # Another process gives the unit back: this one keeps refusing for a moment, no longer.
    assert isinstance(await other_process.holds.release(rid), Released)
    now[0] += 0.4
    assert await refused(hold, HoldRequest([("a", 1), ("a", 2)])) == out_of_stock("a", 3, 0)
    now[0] += 0.2
    second = (await hold(HoldRequest([("a", 1)]))).reservation.id
    # Units this process gives back are offered again at once.
    assert await refused(hold, HoldRequest([("a", 1)])) == out_of_stock("a", 1, 0)
    await inventory.holds.release(second)
    await hold(HoldRequest([("a", 1)]))
    # A retry of a known reservation always asks Redis.
    again = await inventory.holds.reserve([("a", 1)], reservation_id=second)
    assert isinstance(again, Held)
    assert not again.created


async def test_a_refusal_from_memory_comes_before_the_limits_and_the_key(
    make_hold: MakeHold,
) -> None:
    hold = await make_hold(per_ip=5, per_customer=5, sold_out_seconds=60)
    await hold.inventory.stock.set_stock("gone", 0)
    first = HoldRequest([("gone", 1)], customer_id="cus_1", client_address=ADDRESS)
    assert await refused(hold, first) == out_of_stock("gone", 1, 0)  # Redis said so
    assert (await logged(hold, IP, ADDRESS), await logged(hold, CUSTOMER, "cus_1")) == (1, 1)
    for n in range(8):
        crowd = HoldRequest(
            [("gone", 1)], customer_id="cus_1", idempotency_key=f"k{n}", client_address=ADDRESS
        )
        assert await refused(hold, crowd) == out_of_stock("gone", 1, 0)
    # Neither limit counted them, and no key was claimed (a key is kept a day).
    assert (await logged(hold, IP, ADDRESS), await logged(hold, CUSTOMER, "cus_1")) == (1, 1)
    assert not await hold.idempotency.known("k0", "cus_1")
    assert counted(hold, "insufficient_stock") == 9
    assert hold.metrics.sample("reservation_reserve_seconds_count") == 1  # Redis, once


async def test_what_the_memory_cannot_answer_is_refused_as_the_reserve_would(
    make_hold: MakeHold,
) -> None:
    hold = await make_hold(sold_out_seconds=60)
    await hold.inventory.stock.set_stock("gone", 0)
    await hold.inventory.stock.set_stock("other", 5, pool="elsewhere")
    await refused(hold, HoldRequest([("gone", 1)]))
    # A customer id that is none, a cart of two pools, a SKU unknown: what the reserve says.
    bad_customer = HoldRequest([("gone", 1)], customer_id="has space")
    assert (await refused(hold, bad_customer))[0] == "invalid_request"
    assert (await refused(hold, HoldRequest([("gone", 1), ("other", 1)])))[0] == "mixed_pools"
    assert (await refused(hold, HoldRequest([("gone", 1), ("nope", 1)])))[0] == "unknown_sku"
    bad_key = HoldRequest([("gone", 1)], idempotency_key="has space")
    assert (await refused(hold, bad_key))[0] == "invalid_request"


async def test_a_key_already_claimed_goes_past_the_memory_to_its_reservation(
    make_hold: MakeHold,
) -> None:
    hold = await make_hold(sold_out_seconds=60)
    await hold.inventory.stock.set_stock("drop", 1)
    first = await hold(HoldRequest([("drop", 1)], customer_id="cus_1", idempotency_key="k1"))
    assert first.created
    assert await refused(hold, HoldRequest([("drop", 1)])) == out_of_stock("drop", 1, 0)
    again = await hold(HoldRequest([("drop", 1)], customer_id="cus_1", idempotency_key="k1"))
    assert (again.reservation.id, again.created) == (first.reservation.id, False)
    # The same key for another cart is refused as such, memory or not.
    changed = HoldRequest([("drop", 2)], customer_id="cus_1", idempotency_key="k1")
    assert (await refused(hold, changed))[0] == "invalid_request"
    assert (counted(hold, "held"), counted(hold, "repeated")) == (1, 1)


async def test_the_limits_come_before_the_key_and_the_script(make_hold: MakeHold) -> None:
    hold = await make_hold(per_ip=3, per_customer=2)
    await hold.inventory.stock.set_stock("tee", 10)
    for n in range(2):
        request = HoldRequest([("tee", 1)], customer_id="cus_1", client_address=ADDRESS)
        assert (await hold(request)).created, n
    limited = HoldRequest(
        [("tee", 1)], customer_id="cus_1", idempotency_key="late", client_address=ADDRESS
    )
    code, details = await refused(hold, limited)
    assert (code, details["scope"]) == ("rate_limited", "customer")
    assert not await hold.idempotency.known("late", "cus_1")
    assert (await hold.inventory.stock.level("tee")).reserved == 2
    # The address is counted first: the request its customer's limit refused counted for it.
    assert await logged(hold, IP, ADDRESS) == 3
    code, details = await refused(hold, HoldRequest([("tee", 1)], client_address=ADDRESS))
    assert (code, details["scope"]) == ("rate_limited", "ip")
    assert counted(hold, "rate_limited") == 2
    # Without an address (POST /v1/checkout counted it before reading its body), none counts.
    assert (await hold(HoldRequest([("tee", 1)], customer_id="cus_2"))).created
    assert await logged(hold, IP, ADDRESS) == 3


async def test_a_checkouts_hold_is_counted_as_its_checkout_not_here(make_hold: MakeHold) -> None:
    hold = await make_hold(per_customer=1, sold_out_seconds=60)
    await hold.inventory.stock.set_stock("tee", 1)
    request = HoldRequest([("tee", 1)], customer_id="cus_1", for_checkout=True)
    assert (await hold(request)).created
    assert (await refused(hold, HoldRequest([("tee", 1)], for_checkout=True)))[0] == (
        "insufficient_stock"
    )
    assert (await refused(hold, request))[0] == "insufficient_stock"  # the memory, first
    assert (await refused(hold, HoldRequest([("tee", 1)], customer_id="cus_1")))[0] == (
        "insufficient_stock"
    )
    assert hold.metrics.sample("reservation_reservations_total") == 1  # only the last
    assert hold.metrics.sample("reservation_reserve_seconds_count") == 0
    assert sum(hold.metrics.holds_per_second.last(60)[1]) == 0


async def test_a_hold_after_a_sold_out_refusal_forgets_it(make_hold: MakeHold) -> None:
    hold = await make_hold(sold_out_seconds=0.5)
    inventory = hold.inventory
    now = [0.0]
    inventory.sold_out.clock = lambda: now[0]
    await inventory.stock.set_stock("a", 1)
    assert (await hold(HoldRequest([("a", 1)]))).created
    await refused(hold, HoldRequest([("a", 1)]))
    elsewhere = Inventory(inventory.client, keys=inventory.keys)
    await elsewhere.stock.set_stock("a", 3)  # another process restocks: this one is not told
    assert await refused(hold, HoldRequest([("a", 1)])) == out_of_stock("a", 1, 0)
    now[0] += 0.6
    assert (await hold(HoldRequest([("a", 1)]))).created  # the re-check held a unit
    # ... and the memory forgot the SKU: the next buyers are served at once.
    assert (await hold(HoldRequest([("a", 1)]))).created
