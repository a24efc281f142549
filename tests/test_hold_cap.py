"""The cap on live holds per customer (RESERVATION_MAX_HOLDS_PER_CUSTOMER): decided inside the
reserve script, given back by every way a hold ends, on three backends; the API's 409; and
reconcile and a Redis loss keeping the count true (real Redis, real nx-27017)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from domain.outcomes import Committed, Held, OverCustomerLimit, OverHoldCap
from domain.statuses import OrderStatus
from persistence.mongo import Database
from persistence.orders import Order, OrderLine, OrderRepository
from persistence.products import ProductRepository
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace
from reservation.lua.library import RedisClient
from reservation.operations.reconcile import reconcile
from tests.api import MakeApi
from tests.conftest import REDIS_URL, MakeInventory, age_hold

CAP = 3


async def pool_state(client: RedisClient, keys: KeySpace) -> dict[str, bytes | None]:
    """The pool's keys dumped, and the key of every reservation: what a refusal leaves."""
    pool = keys.pool("default")
    names = [pool.stock, pool.holds, pool.usage]
    return {name: await client.dump(name) for name in names}


async def hold(inventory: Inventory, customer: str | None = "ann", sku: str = "tee") -> str:
    outcome = await inventory.holds.reserve([(sku, 1)], customer_id=customer)
    assert isinstance(outcome, Held), outcome
    return outcome.reservation.id


async def test_the_cap_holds_at_the_boundary_and_every_ending_frees_a_place(
    make_inventory: MakeInventory, client: RedisClient, keyspace: KeySpace
) -> None:
    inventory = await make_inventory(max_holds_per_customer=CAP)
    await inventory.stock.set_stock("tee", 100)
    await inventory.stock.set_stock("cap", 100, max_per_customer=1)
    held = [await hold(inventory) for _ in range(CAP)]
    before = await pool_state(client, keyspace)
    assert await inventory.holds.reserve([("tee", 1)], customer_id="ann") == OverHoldCap(CAP, CAP)
    assert await pool_state(client, keyspace) == before  # the refusal changed nothing
    # Another customer, and carts without one, are not capped by ann's holds.
    await hold(inventory, "bob")
    for _ in range(CAP + 1):
        await hold(inventory, None)
    # A retry of a hold ann has (its id) is answered with it, whatever the cap.
    again = await inventory.holds.reserve([("tee", 1)], customer_id="ann", reservation_id=held[0])
    assert isinstance(again, Held)
    assert (again.reservation.id, again.created) == (held[0], False)

    # Released: a place again, and only one.
    await inventory.holds.release(held[0])
    ann_4 = await hold(inventory)
    assert isinstance(await inventory.holds.reserve([("tee", 1)], customer_id="ann"), OverHoldCap)
    # Lapsed, given back by the next script (no sweeper).
    await age_hold(client, keyspace, held[1])
    ann_5 = await hold(inventory)
    assert isinstance(await inventory.holds.reserve([("tee", 1)], customer_id="ann"), OverHoldCap)
    # Paid: the units are sold, not held, and the hold's place is free.
    assert isinstance(await inventory.holds.commit(held[2]), Committed)
    ann_6 = await hold(inventory)
    # Waiting for a delayed payment is still a live hold.
    await inventory.holds.extend(ann_4, hold_seconds=3600)
    refused = await inventory.holds.reserve([("tee", 1)], customer_id="ann")
    assert refused == OverHoldCap(CAP, CAP)
    # The cart's own refusals come first; a per-SKU limit still counts what was bought.
    assert isinstance(
        await inventory.holds.reserve([("cap", 2)], customer_id="ann"), OverCustomerLimit
    )
    for reservation_id in (ann_4, ann_5, ann_6):
        await inventory.holds.release(reservation_id)
    usage = keyspace.pool("default").usage
    assert await client.hget(usage, ":holds|ann") is None  # no live hold: no entry
    assert await client.hget(usage, ":holds|bob") == b"1"


async def test_no_cap_when_off(make_inventory: MakeInventory) -> None:
    inventory = await make_inventory(max_holds_per_customer=0)
    await inventory.stock.set_stock("tee", 100)
    for _ in range(CAP * 3):
        await hold(inventory)


async def test_the_largest_cap_is_taken_and_a_larger_one_refused(
    make_inventory: MakeInventory, client: RedisClient
) -> None:
    """The script takes a cap up to 10^12 (and refuses more); so does Inventory, at once."""
    inventory = await make_inventory(max_holds_per_customer=10**12)
    await inventory.stock.set_stock("tee", 100)
    await hold(inventory)
    for cap in (10**12 + 1, -1):
        with pytest.raises(ValueError, match="max_holds_per_customer"):
            Inventory(client, max_holds_per_customer=cap)


async def test_the_api_answers_409_hold_cap_reached_and_changes_nothing(
    make_api: MakeApi,
) -> None:
    api = await make_api(max_holds_per_customer=2)
    assert (await api.put_product("tee", 10)).status_code == 200
    first = await api.reserve(("tee", 1), customer_id="cus_1")
    assert first.status_code == 201
    assert (await api.reserve(("tee", 1), customer_id="cus_1")).status_code == 201
    redis, keys = api.services.redis, api.services.inventory.keys
    before = await pool_state(redis, keys)
    refused = await api.reserve(("tee", 1), customer_id="cus_1")
    assert refused.status_code == 409
    answer = refused.json()
    assert answer["error"] == "hold_cap_reached"
    assert answer["details"] == {"limit": 2, "held": 2}
    assert "Retry-After" not in refused.headers
    assert await pool_state(redis, keys) == before
    # Releasing one frees a place.
    assert (await api.http.delete(f"/v1/reservations/{first.json()['id']}")).status_code == 200
    assert (await api.reserve(("tee", 1), customer_id="cus_1")).status_code == 201
    metrics = api.services.metrics
    assert metrics.sample("reservation_reservations_total", outcome="hold_cap_reached") == 1


async def test_reconcile_and_a_lost_redis_keep_the_count_true(
    keyspace: KeySpace, mongo_db: Database
) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        inventory = Inventory(client, keys=keyspace, max_holds_per_customer=2)
        products, orders = ProductRepository(mongo_db), OrderRepository(mongo_db)
        await products.upsert("tee", name="Tee", price=1000, currency="eur", stock=10)
        await reconcile(inventory, products, orders)
        paid_hold = await hold(inventory)
        await hold(inventory)
        assert isinstance(
            await inventory.holds.reserve([("tee", 1)], customer_id="ann"), OverHoldCap
        )
        # MongoDB has a payment Redis never heard of: reconcile settles it, the hold is sold.
        await orders.upsert(
            Order(
                checkout_session_id="cs_paid",
                reservation_id=paid_hold,
                status=OrderStatus.PAID,
                items=(OrderLine("tee", 1, 1000),),
                amount_total=1000,
                currency="eur",
            )
        )
        await reconcile(inventory, products, orders)
        level = await inventory.stock.level("tee")
        assert (level.reserved, level.sold) == (1, 1)
        usage = keyspace.pool("default").usage
        assert await client.hget(usage, ":holds|ann") == b"1"
        await hold(inventory)
        assert isinstance(
            await inventory.holds.reserve([("tee", 1)], customer_id="ann"), OverHoldCap
        )

        # Redis loses everything: the holds are gone, and so is their count.
        async for key in client.scan_iter(match=keyspace.pattern()):
            await client.delete(key)
        await reconcile(inventory, products, orders, only_missing=True)
        level = await inventory.stock.level("tee")
        assert (level.reserved, level.sold) == (0, 1)
        await hold(inventory)
        await hold(inventory)
        assert isinstance(
            await inventory.holds.reserve([("tee", 1)], customer_id="ann"), OverHoldCap
        )
    finally:
        async for key in client.scan_iter(match=keyspace.pattern()):
            await client.delete(key)
        await client.aclose()
