"""The core on every backend: real Redis, fakeredis and a 3-master Redis Cluster."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from domain import errors
from domain.outcomes import (
    Committed,
    CommittedLate,
    CustomerRequired,
    Extended,
    Held,
    NotExtended,
    OutOfStock,
    OverCustomerLimit,
    Oversold,
    Released,
    ReleaseRefused,
)
from domain.reservations import CartLine, ReservationStatus
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace
from reservation.stores.cluster import Cluster
from tests.conftest import OWN_BACKENDS, MakeInventory, age_hold


async def counters(inventory: Inventory, sku: str) -> tuple[int, int, int]:
    level = await inventory.stock.level(sku)
    return level.reserved, level.sold, level.available


async def held(inventory: Inventory, *items: tuple[str, int], **options: Any) -> Held:
    outcome = await inventory.holds.reserve(list(items), **options)
    assert isinstance(outcome, Held), outcome
    return outcome


async def age(inventory: Inventory, reservation_id: str) -> None:
    """Make a hold lapse now, as if its time had passed (no sweeper involved)."""
    await age_hold(inventory.client, inventory.keys, reservation_id)


async def test_thousand_buyers_for_a_hundred_units(inventory: Inventory) -> None:
    await inventory.stock.set_stock("drop", 100)
    outcomes = await asyncio.gather(
        *(inventory.holds.reserve([("drop", 1)], customer_id=f"c{i}") for i in range(1000))
    )
    kinds = Counter(type(outcome).__name__ for outcome in outcomes)
    assert kinds == {"Held": 100, "OutOfStock": 900}
    assert all(o.available == 0 for o in outcomes if isinstance(o, OutOfStock))
    assert await counters(inventory, "drop") == (100, 0, 0)
    ids = {o.reservation.id for o in outcomes if isinstance(o, Held)}
    assert len(ids) == 100


async def test_cart_is_all_or_nothing(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 5)
    await inventory.stock.set_stock("b", 1)
    outcome = await inventory.holds.reserve([("a", 2), ("b", 2)])
    assert outcome == OutOfStock("b", 2, 1)
    assert await counters(inventory, "a") == (0, 0, 5)
    assert await counters(inventory, "b") == (0, 0, 1)
    ok = await held(inventory, ("a", 2), ("b", 1))
    assert ok.reservation.items == (CartLine("a", 2), CartLine("b", 1))
    assert await counters(inventory, "a") == (2, 0, 3)
    assert await counters(inventory, "b") == (1, 0, 0)


async def test_same_sku_twice_is_summed_before_checking(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 3)
    assert await inventory.holds.reserve([("a", 2), ("a", 2)]) == OutOfStock("a", 4, 3)
    assert await counters(inventory, "a") == (0, 0, 3)
    ok = await held(inventory, ("a", 1), ("a", 2))
    assert ok.reservation.items == (CartLine("a", 3),)
    assert await counters(inventory, "a") == (3, 0, 0)


async def test_cart_spanning_two_pools_is_refused(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 5, pool="sale-1")
    await inventory.stock.set_stock("b", 5, pool="sale-2")
    with pytest.raises(errors.MixedPools):
        await inventory.holds.reserve([("a", 1), ("b", 1)])
    assert await counters(inventory, "a") == (0, 0, 5)
    assert await counters(inventory, "b") == (0, 0, 5)
    ok = await held(inventory, ("b", 1))
    assert ok.reservation.pool == "sale-2"
    assert ok.reservation.id.startswith("sale-2.")


async def test_unknown_sku_is_refused(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 5)
    with pytest.raises(errors.UnknownSku):
        await inventory.holds.reserve([("a", 1), ("nope", 1)])
    assert await counters(inventory, "a") == (0, 0, 5)


async def test_retried_reserve_never_holds_twice(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 10)
    first = await held(inventory, ("a", 2))
    rid = first.reservation.id
    retries = await asyncio.gather(
        *(inventory.holds.reserve([("a", 2)], reservation_id=rid) for _ in range(20))
    )
    assert all(isinstance(r, Held) and not r.created for r in retries)
    assert all(r.reservation.id == rid for r in retries if isinstance(r, Held))
    assert await counters(inventory, "a") == (2, 0, 8)


async def test_concurrent_first_reserves_with_one_id_hold_once(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 10)
    rid = "default.abcdefghijklmnopqrstuv"
    results = await asyncio.gather(
        *(inventory.holds.reserve([("a", 3)], reservation_id=rid) for _ in range(30))
    )
    assert sum(1 for r in results if isinstance(r, Held) and r.created) == 1
    assert await counters(inventory, "a") == (3, 0, 7)


async def test_release_is_idempotent(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 4)
    rid = (await held(inventory, ("a", 3))).reservation.id
    first = await inventory.holds.release(rid)
    second = await inventory.holds.release(rid)
    assert isinstance(first, Released)
    assert first.changed
    assert isinstance(second, Released)
    assert not second.changed
    assert second.reservation.status is ReservationStatus.RELEASED
    assert await counters(inventory, "a") == (0, 0, 4)


async def test_commit_is_idempotent(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 4)
    rid = (await held(inventory, ("a", 3))).reservation.id
    results = await asyncio.gather(*(inventory.holds.commit(rid) for _ in range(10)))
    assert sum(1 for r in results if isinstance(r, Committed) and not r.repeated) == 1
    assert all(isinstance(r, Committed) for r in results)
    assert await counters(inventory, "a") == (0, 3, 1)
    assert (await inventory.holds.get(rid)).status is ReservationStatus.COMMITTED


async def test_release_after_commit_is_refused(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 4)
    rid = (await held(inventory, ("a", 1))).reservation.id
    await inventory.holds.commit(rid)
    refused = await inventory.holds.release(rid)
    assert isinstance(refused, ReleaseRefused)
    assert isinstance(refused.error(), errors.AlreadyCommitted)
    assert await counters(inventory, "a") == (0, 1, 3)


async def test_unknown_reservation_is_not_found(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 1)
    for call in (inventory.holds.release, inventory.holds.commit, inventory.holds.get):
        with pytest.raises(errors.NotFound):
            await call("default.abcdefghijklmnopqrstuv")
        with pytest.raises(errors.NotFound):
            await call("garbage{}")


# The two tests below let a hold lapse on Redis' own clock (TIME), the only ones that do; every
# other ages its hold (age_hold). Nothing is checked within the hold's second, which a busy
# machine may spend before the next line runs: what the hold took, its reply says.
def assert_lasts_one_second(outcome: Held) -> None:
    reservation = outcome.reservation
    assert reservation.expires_at - reservation.created_at == timedelta(seconds=1)


async def test_one_second_hold_returns_on_next_read(make_inventory: MakeInventory) -> None:
    inventory = await make_inventory(hold_seconds=1)
    await inventory.stock.set_stock("a", 2)
    outcome = await held(inventory, ("a", 2))
    assert_lasts_one_second(outcome)
    rid = outcome.reservation.id
    await asyncio.sleep(1.2)
    assert await counters(inventory, "a") == (0, 0, 2)
    assert (await inventory.holds.get(rid)).status is ReservationStatus.EXPIRED
    assert await inventory.stock.expired_holds("default") == 1
    released = await inventory.holds.release(rid)
    assert released == Released(released.reservation, changed=False)
    assert released.reservation.status is ReservationStatus.RELEASED
    assert await counters(inventory, "a") == (0, 0, 2)


async def test_one_second_hold_returns_on_next_write(make_inventory: MakeInventory) -> None:
    inventory = await make_inventory(hold_seconds=1)
    await inventory.stock.set_stock("a", 1)
    assert_lasts_one_second(await held(inventory, ("a", 1)))  # the only unit
    await asyncio.sleep(1.2)
    # No read in between: the reserve itself reclaims the lapsed hold first.
    await held(inventory, ("a", 1))
    assert await counters(inventory, "a") == (1, 0, 0)


async def test_late_payment_with_free_stock_commits_late(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 3)
    rid = (await held(inventory, ("a", 2), customer_id="bob")).reservation.id
    await age(inventory, rid)
    outcome = await inventory.holds.commit(rid)
    assert isinstance(outcome, CommittedLate)
    assert outcome.reservation.committed_late
    assert await counters(inventory, "a") == (0, 2, 1)
    again = await inventory.holds.commit(rid)
    assert isinstance(again, CommittedLate)
    assert await counters(inventory, "a") == (0, 2, 1)


async def test_late_payment_without_stock_is_oversold_and_changes_nothing(
    inventory: Inventory,
) -> None:
    await inventory.stock.set_stock("a", 2)
    late = (await held(inventory, ("a", 2))).reservation.id
    await age(inventory, late)
    await held(inventory, ("a", 1))
    before = await counters(inventory, "a")
    assert before == (1, 0, 1)
    outcome = await inventory.holds.commit(late)
    assert outcome == Oversold(late, "a", 2, 1)
    assert await counters(inventory, "a") == before
    assert (await inventory.holds.get(late)).status is ReservationStatus.RELEASED
    assert await inventory.holds.commit(late) == Oversold(late, "a", 2, 1)


async def test_an_oversold_refusal_is_final(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 1)
    late = (await held(inventory, ("a", 1))).reservation.id
    await age(inventory, late)
    other = (await held(inventory, ("a", 1))).reservation.id
    assert isinstance(await inventory.holds.commit(late), Oversold)
    await inventory.holds.release(other)
    # Stock is free again, but the first payment is being refunded: it must not take it.
    assert await inventory.holds.commit(late) == Oversold(late, "a", 1, 1)
    assert await counters(inventory, "a") == (0, 0, 1)
    assert isinstance(await inventory.holds.commit(late, items=[("a", 1)]), Oversold)


async def test_late_payment_after_release_commits_late(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 2)
    rid = (await held(inventory, ("a", 1))).reservation.id
    await inventory.holds.release(rid)
    assert isinstance(await inventory.holds.commit(rid), CommittedLate)
    assert await counters(inventory, "a") == (0, 1, 1)


async def test_commit_when_redis_lost_the_reservation_uses_the_paid_cart(
    inventory: Inventory,
) -> None:
    await inventory.stock.set_stock("a", 5)
    rid = (await held(inventory, ("a", 2))).reservation.id
    await inventory.client.delete(inventory.keys.pool("default").record(rid))
    with pytest.raises(errors.NotFound):
        await inventory.holds.commit(rid)
    outcome = await inventory.holds.commit(rid, items=[("a", 2)], customer_id="bob")
    assert isinstance(outcome, CommittedLate)
    repeat = await inventory.holds.commit(rid, items=[("a", 2)], customer_id="bob")
    assert isinstance(repeat, CommittedLate)
    # The lost record's hold stays counted until it lapses; the payment was taken from free stock.
    assert await counters(inventory, "a") == (2, 2, 1)


async def test_customer_limit_across_reservations(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 100, max_per_customer=3)
    first = (await held(inventory, ("a", 2), customer_id="bob")).reservation.id
    over = await inventory.holds.reserve([("a", 2)], customer_id="bob")
    assert over == OverCustomerLimit("a", 3, 2)
    assert isinstance(over.error(), errors.CustomerLimitExceeded)
    second = (await held(inventory, ("a", 1), customer_id="bob")).reservation.id
    await held(inventory, ("a", 3), customer_id="alice")
    await held(inventory, ("a", 3))  # anonymous carts are limited one reservation at a time
    await inventory.holds.commit(first)
    await inventory.holds.release(second)
    # Bought units still count; released ones no longer do.
    await held(inventory, ("a", 1), customer_id="bob")
    assert isinstance(
        await inventory.holds.reserve([("a", 1)], customer_id="bob"), OverCustomerLimit
    )
    assert await counters(inventory, "a") == (7, 2, 91)


async def test_customer_limit_bounds_a_reservation_without_a_customer(
    inventory: Inventory,
) -> None:
    await inventory.stock.set_stock("lim", 5, max_per_customer=1)
    before = await counters(inventory, "lim")
    over = await inventory.holds.reserve([("lim", 5)])
    assert over == OverCustomerLimit("lim", 1, 0)
    # A SKU twice in one cart is summed before the limit is checked.
    assert await inventory.holds.reserve([("lim", 1), ("lim", 1)]) == OverCustomerLimit("lim", 1, 0)
    assert await counters(inventory, "lim") == before
    await held(inventory, ("lim", 1))
    await held(inventory, ("lim", 1))  # another anonymous reservation: one at a time
    await inventory.stock.set_stock("free", 5)
    await held(inventory, ("free", 5))  # no limit, no bound


async def test_anonymous_carts_of_limited_skus_can_be_refused(
    make_inventory: MakeInventory,
) -> None:
    inventory = await make_inventory(require_customer=True)
    await inventory.stock.set_stock("lim", 5, max_per_customer=2)
    await inventory.stock.set_stock("free", 5)
    before = await counters(inventory, "lim"), await counters(inventory, "free")
    refused = await inventory.holds.reserve([("free", 1), ("lim", 1)])
    assert refused == CustomerRequired("lim")
    assert isinstance(refused.error(), errors.CustomerRequired)
    assert (await counters(inventory, "lim"), await counters(inventory, "free")) == before
    await held(inventory, ("free", 1))  # unlimited SKUs need no customer
    await held(inventory, ("lim", 2), customer_id="bob")


async def test_customer_limit_comes_back_when_a_hold_lapses(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 10, max_per_customer=1)
    rid = (await held(inventory, ("a", 1), customer_id="bob")).reservation.id
    assert isinstance(
        await inventory.holds.reserve([("a", 1)], customer_id="bob"), OverCustomerLimit
    )
    await age(inventory, rid)
    await held(inventory, ("a", 1), customer_id="bob")


async def test_extend_moves_hold_to_awaiting_payment(make_inventory: MakeInventory) -> None:
    inventory = await make_inventory(hold_seconds=60)
    await inventory.stock.set_stock("a", 2)
    reservation = (await held(inventory, ("a", 1))).reservation
    outcome = await inventory.holds.extend(reservation.id, hold_seconds=3 * 24 * 3600)
    assert isinstance(outcome, Extended)
    assert outcome.reservation.status is ReservationStatus.AWAITING_PAYMENT
    assert outcome.reservation.expires_at > reservation.expires_at
    shorter = await inventory.holds.extend(reservation.id, hold_seconds=1)
    assert shorter.reservation.expires_at == outcome.reservation.expires_at
    assert await counters(inventory, "a") == (1, 0, 1)
    assert isinstance(await inventory.holds.commit(reservation.id), Committed)
    assert isinstance(await inventory.holds.extend(reservation.id, hold_seconds=60), NotExtended)
    assert await counters(inventory, "a") == (0, 1, 1)


async def test_awaiting_payment_can_lapse_and_be_released(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 2)
    one = (await held(inventory, ("a", 1))).reservation.id
    two = (await held(inventory, ("a", 1))).reservation.id
    await inventory.holds.extend(one, hold_seconds=600)
    await inventory.holds.extend(two, hold_seconds=600)
    await age(inventory, one)
    assert (await inventory.holds.get(one)).status is ReservationStatus.EXPIRED
    assert isinstance(await inventory.holds.extend(one, hold_seconds=600), NotExtended)
    released = await inventory.holds.release(two)
    assert isinstance(released, Released)
    assert released.changed
    assert await counters(inventory, "a") == (0, 0, 2)


async def test_set_stock_refuses_to_go_below_reserved_plus_sold(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 10)
    rid = (await held(inventory, ("a", 3))).reservation.id
    await inventory.holds.commit(rid)
    await held(inventory, ("a", 2))
    with pytest.raises(errors.StockBelowCommitted) as refused:
        await inventory.stock.set_stock("a", 4)
    assert refused.value.details == {"sku": "a", "reserved": 2, "sold": 3}
    level = await inventory.stock.set_stock("a", 5)
    assert (level.total, level.reserved, level.sold, level.available) == (5, 2, 3, 0)
    raised = await inventory.stock.set_stock("a", 50, max_per_customer=4)
    assert (raised.available, raised.max_per_customer) == (45, 4)
    kept = await inventory.stock.set_stock("a", 60, keep_limit=True)
    assert kept.max_per_customer == 4


async def test_a_sku_stays_in_its_pool(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 10, pool="sale")
    with pytest.raises(errors.PoolConflict):
        await inventory.stock.set_stock("a", 10)
    assert await inventory.pools.stocked() == ["sale"]
    assert [level.sku for level in await inventory.stock.levels(pool="sale")] == ["a"]


async def test_reclaim_is_bounded_per_call_and_complete_per_sweep(
    make_inventory: MakeInventory,
) -> None:
    inventory = await make_inventory(reclaim_batch=10)
    await inventory.stock.set_stock("a", 100)
    ids = [(await held(inventory, ("a", 1))).reservation.id for _ in range(45)]
    for rid in ids:
        await age(inventory, rid)
    # One read reclaims one batch.
    assert await counters(inventory, "a") == (35, 0, 65)
    # Touching a lapsed reservation settles it even when the batch has not reached it (a
    # lookup settles its own hold only: it reclaims no batch).
    assert (await inventory.holds.get(ids[-1])).status is ReservationStatus.EXPIRED
    still_held = (await counters(inventory, "a"))[0]
    assert still_held in (24, 25)  # one more batch, and maybe ids[-1] besides
    assert await inventory.holds.reclaim("default") == still_held
    assert await inventory.stock.expired_holds("default") == 45
    assert await counters(inventory, "a") == (0, 0, 100)


# FUNCTION FLUSH drops every library of the server: on the shared Redis, that of every test
# running beside this one (other runs of the suite, mutation checks), two of whose calls could
# then meet "Function not found" twice in a row and fail. So a Redis of this test's own.
@pytest.mark.parametrize("client", OWN_BACKENDS, indirect=True)
async def test_scripts_survive_function_flush(inventory: Inventory) -> None:
    # A Redis that lost the library (restarted without persistence, FUNCTION FLUSH, a new
    # node) gets it loaded again by the next call, which is then served.
    await inventory.stock.set_stock("a", 3)
    await inventory.client.function_flush()
    await held(inventory, ("a", 1))
    await inventory.client.function_flush()
    await inventory.client.script_flush()  # scripts are not used: nothing to lose there
    assert await counters(inventory, "a") == (1, 0, 2)


async def test_stock_of_several_skus_across_pools(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 3, pool="one")
    await inventory.stock.set_stock("b", 4, pool="two")
    levels = await inventory.stock.levels(["b", "a"])
    assert [(level.sku, level.pool, level.total) for level in levels] == [
        ("b", "two", 4),
        ("a", "one", 3),
    ]
    with pytest.raises(errors.UnknownSku):
        await inventory.stock.level("zzz")


async def test_retry_answers_the_existing_hold_even_when_sold_out(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 2)
    rid = (await held(inventory, ("a", 2))).reservation.id
    again = await inventory.holds.reserve([("a", 2)], reservation_id=rid)
    assert isinstance(again, Held)
    assert not again.created
    assert again.reservation.id == rid
    assert await counters(inventory, "a") == (2, 0, 0)


async def test_restore_rebuilds_counters_keeping_live_holds(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 10, pool="p")
    await held(inventory, ("a", 2))
    paid = (await held(inventory, ("a", 3))).reservation.id
    await inventory.holds.commit(paid)
    before, after = await inventory.stock.restore("a", total=12, sold=4, pool="p")
    assert before is not None
    assert (before.total, before.reserved, before.sold) == (10, 2, 3)
    assert (after.total, after.reserved, after.sold, after.available) == (12, 2, 4, 6)
    missing, created = await inventory.stock.restore(
        "b", total=5, sold=1, pool="p", max_per_customer=2
    )
    assert missing is None
    assert (created.total, created.reserved, created.sold, created.max_per_customer) == (5, 0, 1, 2)
    assert await inventory.pools.of_sku("b") == "p"


async def test_restock_puts_refunded_units_back_once(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 5, max_per_customer=2)
    rid = (await held(inventory, ("a", 2), customer_id="bob")).reservation.id
    await inventory.holds.commit(rid)
    assert await counters(inventory, "a") == (0, 2, 3)
    assert (await inventory.holds.restock(rid)).status is ReservationStatus.RELEASED
    assert (await inventory.holds.restock(rid)).status is ReservationStatus.RELEASED
    assert await counters(inventory, "a") == (0, 0, 5)
    await held(inventory, ("a", 2), customer_id="bob")  # the limit counts the refund back too
    held_only = (await held(inventory, ("a", 1))).reservation.id
    assert (await inventory.holds.restock(held_only)).status is ReservationStatus.HELD


async def test_commit_without_counters_decides_nothing(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 5)
    rid = (await held(inventory, ("a", 2))).reservation.id
    # Redis restarted empty: no counters, no record.
    for key in inventory.keys.pool("default").shared:
        await inventory.client.delete(key)
    await inventory.client.delete(inventory.keys.pool("default").record(rid))
    with pytest.raises(errors.StorageUnavailable):
        await inventory.holds.commit(rid, items=[("a", 2)])
    await inventory.stock.restore("a", total=5, sold=0)
    assert isinstance(await inventory.holds.commit(rid, items=[("a", 2)]), CommittedLate)
    assert await counters(inventory, "a") == (0, 2, 3)


async def test_a_restocked_payment_is_never_sold_again(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 5)
    rid = (await held(inventory, ("a", 2))).reservation.id
    await inventory.holds.commit(rid)
    await inventory.holds.restock(rid)
    assert isinstance(await inventory.holds.commit(rid), Oversold)
    assert isinstance(await inventory.holds.commit(rid, items=[("a", 2)]), Oversold)
    assert await counters(inventory, "a") == (0, 0, 5)


async def test_settle_paid_makes_a_paid_reservation_committed_once(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 5)
    rid = (await held(inventory, ("a", 2))).reservation.id
    # Reconcile: MongoDB says it is paid (sold = 2) while Redis still holds it.
    assert await inventory.holds.settle_paid(rid, items=[("a", 2)]) == "settled"
    await inventory.stock.restore("a", total=5, sold=2)
    assert await counters(inventory, "a") == (0, 2, 3)
    repeat = await inventory.holds.commit(rid)
    assert isinstance(repeat, Committed)
    assert repeat.repeated
    assert await counters(inventory, "a") == (0, 2, 3)
    assert await inventory.holds.settle_paid(rid, items=[("a", 2)]) == "unchanged"
    lost = "default.abcdefghijklmnopqrstuv"
    assert await inventory.holds.settle_paid(lost, items=[("a", 1)]) == "settled"
    assert (await inventory.holds.get(lost)).status is ReservationStatus.COMMITTED


async def test_nothing_is_sold_while_a_pool_is_fenced(inventory: Inventory) -> None:
    await inventory.stock.set_stock("a", 5)
    rid = (await held(inventory, ("a", 2))).reservation.id
    other = (await held(inventory, ("a", 1))).reservation.id
    async with inventory.stock.fenced(["default"]):
        with pytest.raises(errors.StorageUnavailable):
            await inventory.holds.commit(rid)
        assert isinstance(await inventory.holds.release(other), Released)  # giving back is fine
        await held(inventory, ("a", 1))  # and so is holding
    assert isinstance(await inventory.holds.commit(rid), Committed)
    assert await counters(inventory, "a") == (1, 2, 2)


@pytest.mark.parametrize("client", ["cluster"], indirect=True)
async def test_cluster_routes_fcall_by_its_keys(client: Cluster, keyspace: KeySpace) -> None:
    """The service's cluster client sends each script call straight to its keys' node: no
    COMMAND GETKEYS round trip first (redis-py's RedisCluster asks one for every FCALL)."""
    assert isinstance(client, Cluster)
    inventory = Inventory(client, keys=keyspace)
    await inventory.stock.set_stock("a", 5)

    async def getkeys() -> int:
        calls = 0
        for node in client.get_primaries():
            stats = await client.info("commandstats", target_nodes=node)
            calls += int(stats.get("cmdstat_command|getkeys", {}).get("calls", 0))
        return calls

    before = await getkeys()
    held = [await inventory.holds.reserve([("a", 1)]) for _ in range(3)]
    assert all(isinstance(outcome, Held) for outcome in held)
    assert (await inventory.stock.level("a")).reserved == 3
    assert await getkeys() == before
