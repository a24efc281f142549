"""Reconcile: Redis counters rebuilt from MongoDB (real Redis, real nx-27017)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.outcomes import CommittedLate, Held, Oversold
from domain.reservations import StockLevel
from domain.statuses import OrderStatus
from harness import servers
from persistence.mongo import Database
from persistence.orders import Order, OrderLine, OrderRepository
from persistence.products import ProductRepository
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace
from reservation.core.reservation_ids import new_reservation_id
from reservation.operations.reconcile import StockDiff, format_diff, reconcile
from tests.conftest import age_hold

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_client(keyspace: KeySpace) -> AsyncIterator[Redis]:
    """The shared Redis; this test's keys (its own prefix) are deleted afterwards."""
    client = Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        async for key in client.scan_iter(match=keyspace.pattern(), count=1000):
            await client.delete(key)
        await client.aclose()


@pytest.fixture
def inventory(redis_client: Redis, keyspace: KeySpace) -> Inventory:
    return Inventory(redis_client, keys=keyspace)


def paid(
    session: str,
    *lines: tuple[str, int],
    status: OrderStatus = OrderStatus.PAID,
    reservation_id: str | None = None,
) -> Order:
    return Order(
        checkout_session_id=session,
        reservation_id=reservation_id or f"default.{session}",
        status=status,
        items=tuple(OrderLine(sku, quantity, 1000) for sku, quantity in lines),
        amount_total=1000 * sum(quantity for _, quantity in lines),
        currency="eur",
    )


async def catalog(db: Database) -> tuple[ProductRepository, OrderRepository]:
    """tee: 10 on hand, 3 paid; mug (pool shop, limit 2): 5, 1 paid; cap: 3, none paid."""
    products, orders = ProductRepository(db), OrderRepository(db)
    await products.upsert("tee", name="Tee", price=1000, currency="eur", stock=10)
    await products.upsert(
        "mug", name="Mug", price=1000, currency="eur", stock=5, pool="shop", max_per_customer=2
    )
    await products.upsert("cap", name="Cap", price=1000, currency="eur", stock=3)
    await orders.upsert(paid("cs_1", ("tee", 2)))
    await orders.upsert(paid("cs_2", ("tee", 1)))
    await orders.upsert(paid("cs_3", ("mug", 1)))
    await orders.upsert(paid("cs_4", ("tee", 4), status=OrderStatus.REFUNDED_OVERSOLD))
    await orders.upsert(paid("cs_5", ("cap", 1), status=OrderStatus.AWAITING_PAYMENT))
    return products, orders


def level(
    sku: str, pool: str, total: int, reserved: int, sold: int, limit: int | None = None
) -> StockLevel:
    return StockLevel(sku, pool, total, reserved, sold, limit)


async def paid_units(orders: OrderRepository) -> dict[str, int]:
    """Units per SKU in paid orders: what reconcile must rebuild `sold` from."""
    units: dict[str, int] = {}
    async for order in orders.with_status([OrderStatus.PAID]):
        for line in order.items:
            units[line.sku] = units.get(line.sku, 0) + line.quantity
    return units


async def levels(inventory: Inventory) -> dict[str, StockLevel]:
    found = await inventory.stock.levels(pool="default") + await inventory.stock.levels(pool="shop")
    return {stock.sku: stock for stock in found}


EXPECTED = {
    "cap": level("cap", "default", 3, 0, 0),
    "mug": level("mug", "shop", 5, 0, 1, 2),
    "tee": level("tee", "default", 10, 1, 3),
}


async def wrong_counters(inventory: Inventory) -> None:
    """tee stocked at 99 with one live hold; mug stocked but nothing sold; cap missing."""
    await inventory.stock.set_stock("tee", 99)
    assert isinstance(await inventory.holds.reserve([("tee", 1)]), Held)
    await inventory.stock.set_stock("mug", 5, pool="shop", max_per_customer=2)


async def test_reconcile_fixes_wrong_counters_and_reports(
    inventory: Inventory, mongo_db: Database
) -> None:
    products, orders = await catalog(mongo_db)
    await wrong_counters(inventory)

    diffs = await reconcile(inventory, products, orders)

    assert [diff.sku for diff in diffs] == ["cap", "mug", "tee"]
    assert {diff.sku: diff.after for diff in diffs} == EXPECTED
    assert await levels(inventory) == EXPECTED
    by_sku = {diff.sku: diff for diff in diffs}
    assert by_sku["cap"].before is None
    assert by_sku["tee"].before == level("tee", "default", 99, 1, 0)
    assert all(diff.changed for diff in diffs)
    table = format_diff(diffs)
    assert "tee" in table
    assert "total: 99 -> 10" in table
    assert "sold: 0 -> 3" in table
    assert "total: - -> 3" in table
    tee_rows = [line for line in table.splitlines() if line.startswith("tee ")]
    assert len(tee_rows) == 2  # total and sold; its live hold is kept
    assert table.endswith("3 of 3 SKUs changed")

    again = await reconcile(inventory, products, orders)
    assert not any(diff.changed for diff in again)
    assert format_diff(again) == "0 of 3 SKUs changed"


async def test_dry_run_predicts_and_writes_nothing(
    inventory: Inventory, mongo_db: Database
) -> None:
    products, orders = await catalog(mongo_db)
    await wrong_counters(inventory)
    before = await levels(inventory)

    predicted = await reconcile(inventory, products, orders, dry_run=True)

    assert await levels(inventory) == before
    assert "cap" not in before
    assert {diff.sku: diff.after for diff in predicted} == EXPECTED
    applied = await reconcile(inventory, products, orders)
    assert predicted == applied


async def test_only_missing_touches_only_missing_skus(
    inventory: Inventory, mongo_db: Database
) -> None:
    products, orders = await catalog(mongo_db)
    await wrong_counters(inventory)

    diffs = await reconcile(inventory, products, orders, only_missing=True)

    assert diffs == [StockDiff("cap", "default", None, EXPECTED["cap"])]
    after = await levels(inventory)
    assert after["cap"] == EXPECTED["cap"]
    assert after["tee"] == level("tee", "default", 99, 1, 0)
    assert after["mug"] == level("mug", "shop", 5, 0, 0, 2)
    assert await reconcile(inventory, products, orders, only_missing=True) == []


async def test_after_flushall_counters_match_paid_orders(
    tmp_path: Path, keyspace: KeySpace, mongo_db: Database
) -> None:
    if servers.REDIS_SERVER is None:
        pytest.skip("redis-server binary not found")
    port = servers.free_port()
    # A Redis of this test's own: FLUSHALL must never reach the shared one.
    process = servers.start_redis(tmp_path / "redis", port)
    client = Redis(host="127.0.0.1", port=port)
    try:
        inventory = Inventory(client, keys=keyspace)
        products, orders = await catalog(mongo_db)
        await reconcile(inventory, products, orders)
        for _ in range(3):  # the paid tee units, held and committed as the webhook would
            held = await inventory.holds.reserve([("tee", 1)])
            assert isinstance(held, Held)
            await inventory.holds.commit(held.reservation.id)
        assert isinstance(await inventory.holds.reserve([("tee", 2)]), Held)  # lost with Redis

        await client.flushall()
        assert await levels(inventory) == {}
        diffs = await reconcile(inventory, products, orders, only_missing=True)

        assert all(diff.before is None for diff in diffs)
        sold = await paid_units(orders)
        after = await levels(inventory)
        assert {sku: stock.sold for sku, stock in after.items()} == {
            sku: sold.get(sku, 0) for sku in after
        }
        assert after == {
            "cap": level("cap", "default", 3, 0, 0),
            "mug": level("mug", "shop", 5, 0, 1, 2),
            "tee": level("tee", "default", 10, 0, 3),
        }
        # No unit is sold twice: only what paid orders left is available.
        assert not isinstance(await inventory.holds.reserve([("tee", 8)]), Held)
        assert isinstance(await inventory.holds.reserve([("tee", 7)]), Held)
    finally:
        await client.aclose()
        servers.stop_process(process)


async def test_a_payment_recorded_while_reconcile_reads_counts_once(
    inventory: Inventory, mongo_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A webhook records its order paid while reconcile walks the orders (its commit is fenced
    # meanwhile): reconcile must neither count it nor settle it, and its commit counts it once.
    products, orders = await catalog(mongo_db)
    rid = new_reservation_id("default")
    late = paid("cs_late", ("tee", 2), reservation_id=rid)
    walk = orders.with_status

    async def recorded_during_the_walk(*args: Any, **kwargs: Any) -> AsyncIterator[Order]:
        async for order in walk(*args, **kwargs):
            yield order
        await orders.upsert(late)

    monkeypatch.setattr(orders, "with_status", recorded_during_the_walk)
    await reconcile(inventory, products, orders)
    assert (await levels(inventory))["tee"].sold == 3
    assert isinstance(await inventory.holds.commit(rid, items=[("tee", 2)]), CommittedLate)
    assert (await levels(inventory))["tee"].sold == 5  # = the paid orders: 2 + 1 + 2


async def test_a_payment_redis_refused_for_good_sells_nothing(
    inventory: Inventory, mongo_db: Database, keyspace: KeySpace, redis_client: Redis
) -> None:
    # Oversold: Redis refused the payment for good; its order is still `paid` until the
    # handler's refund is recorded. Reconcile does not count it as sold.
    products, orders = await catalog(mongo_db)
    await reconcile(inventory, products, orders)
    held = await inventory.holds.reserve([("cap", 3)])
    assert isinstance(held, Held)
    rid = held.reservation.id
    await age_hold(redis_client, keyspace, rid)
    assert isinstance(await inventory.holds.reserve([("cap", 3)]), Held)  # the crowd took them
    assert isinstance(await inventory.holds.commit(rid), Oversold)
    await orders.upsert(paid("cs_oversold", ("cap", 3), reservation_id=rid))
    await reconcile(inventory, products, orders)
    assert (await levels(inventory))["cap"] == level("cap", "default", 3, 3, 0)


# -- the command line --------------------------------------------------------------------


async def run_cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reservation",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_reconcile_command(
    inventory: Inventory, keyspace: KeySpace, mongo_db: Database, mongodb_uri: str
) -> None:
    await catalog(mongo_db)
    await wrong_counters(inventory)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_CLUSTER", "MONGODB_URI", "REDIS_URL")
    }
    env.update(RESERVATION_KEY_PREFIX=keyspace.prefix, MONGODB_DATABASE=mongo_db.name)

    code, output = await run_cli({**env, "MONGODB_URI": mongodb_uri}, "reconcile")
    assert code == 2
    assert "REDIS_URL is required" in output
    code, output = await run_cli({**env, "REDIS_URL": REDIS_URL}, "reconcile")
    assert code == 2
    assert "MONGODB_URI is required" in output

    env.update(REDIS_URL=REDIS_URL, MONGODB_URI=mongodb_uri)
    before = await levels(inventory)
    code, output = await run_cli(env, "reconcile", "--dry-run")
    assert (code, output.splitlines()[0]) == (0, "dry run: nothing written")
    assert "total: 99 -> 10" in output
    assert "3 of 3 SKUs changed" in output
    assert await levels(inventory) == before

    code, output = await run_cli(env, "reconcile")
    assert code == 0, output
    assert "total: 99 -> 10" in output
    assert await levels(inventory) == EXPECTED
    code, output = await run_cli(env, "reconcile")
    assert (code, output.strip()) == (0, "0 of 3 SKUs changed")
