"""The MongoDB repositories against a real server (nx-27017 unless MONGODB_URI is set)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from domain import errors
from domain.statuses import OrderStatus
from persistence.events import EventCounts, StripeEventRepository
from persistence.mongo import Database, Document, ensure_indexes, ping, storage_errors
from persistence.orders import Order, OrderConflict, OrderLine, OrderRepository
from persistence.products import ProductRepository
from tests.mongo import MongoServer


def order(session: str = "cs_1", status: OrderStatus = OrderStatus.PAID, **fields: object) -> Order:
    values: dict[str, object] = {
        "checkout_session_id": session,
        "reservation_id": f"default.{session}",
        "status": status,
        "items": (OrderLine("tee", 2, 1500), OrderLine("mug", 1, 900)),
        "amount_total": 3900,
        "currency": "eur",
        "customer_email": "buyer@example.com",
        "payment_intent": "pi_1",
    }
    values.update(fields)
    return Order(**values)  # type: ignore[arg-type]


# -- connection --------------------------------------------------------------------------


async def test_indexes_are_idempotent_and_ping_answers(mongo_db: Database) -> None:
    await ensure_indexes(mongo_db)
    assert await ping(mongo_db)


async def test_storage_errors_translates_driver_errors() -> None:
    with pytest.raises(errors.StorageUnavailable) as raised:
        async with storage_errors():
            raise PyMongoError("boom")
    assert raised.value.status_code == 503
    assert raised.value.details == {"backend": "mongodb"}
    assert isinstance(raised.value.__cause__, PyMongoError)


# -- products ----------------------------------------------------------------------------


async def test_product_upsert_get_list(mongo_db: Database) -> None:
    products = ProductRepository(mongo_db)
    assert await products.get("tee") is None
    stored, previous = await products.upsert(
        "tee", name="Tee", price=1500, currency="EUR", stock=10, max_per_customer=2
    )
    assert previous is None
    assert (stored.currency, stored.pool, stored.max_per_customer) == ("eur", "default", 2)
    assert stored.created_at == stored.updated_at
    assert stored.created_at.tzinfo == UTC
    assert await products.get("tee") == stored
    await products.upsert("apron", name="Apron", price=100, currency="usd", stock=1, pool="p2")
    assert [product.sku for product in await products.list()] == ["apron", "tee"]


async def test_product_update_keeps_created_at_and_returns_previous(mongo_db: Database) -> None:
    products = ProductRepository(mongo_db)
    first, _ = await products.upsert("tee", name="Tee", price=1500, currency="eur", stock=10)
    await asyncio.sleep(0.005)
    second, previous = await products.upsert(
        "tee", name="Tee v2", price=1700, currency="eur", stock=8, max_per_customer=0
    )
    assert previous == first
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert (second.name, second.price, second.stock, second.max_per_customer) == (
        "Tee v2",
        1700,
        8,
        None,
    )
    assert await products.get("tee") == second


async def test_product_restore_undoes_an_upsert(mongo_db: Database) -> None:
    products = ProductRepository(mongo_db)
    first, _ = await products.upsert("tee", name="Tee", price=1500, currency="eur", stock=10)
    _, previous = await products.upsert("tee", name="Tee", price=1500, currency="eur", stock=0)
    await products.restore("tee", previous)
    assert await products.get("tee") == first
    # Restoring again, or after another write, still leaves the previous product.
    await products.restore("tee", previous)
    assert await products.get("tee") == first

    _, none = await products.upsert("new", name="New", price=1, currency="eur", stock=1)
    assert none is None
    await products.restore("new", none)
    assert await products.get("new") is None
    assert [product.sku for product in await products.list()] == ["tee"]


async def test_concurrent_product_upserts_make_one_product(mongo_db: Database) -> None:
    products = ProductRepository(mongo_db)
    results = await asyncio.gather(
        *(
            products.upsert("tee", name="Tee", price=1500, currency="eur", stock=stock)
            for stock in range(20)
        )
    )
    assert sum(previous is None for _, previous in results) == 1
    assert await mongo_db["products"].count_documents({"sku": "tee"}) == 1
    stored = await products.get("tee")
    assert stored is not None
    assert stored.created_at == min(product.created_at for product, _ in results)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sku", "bad sku"),
        ("name", ""),
        ("price", -1),
        ("price", 1.5),
        ("currency", "euro"),
        ("currency", "€ur"),
        ("stock", -1),
        ("pool", "{x}"),
        ("max_per_customer", -1),
    ],
)
async def test_product_bad_input_is_refused(mongo_db: Database, field: str, value: object) -> None:
    products = ProductRepository(mongo_db)
    fields: dict[str, object] = {
        "sku": "tee",
        "name": "Tee",
        "price": 1500,
        "currency": "eur",
        "stock": 1,
        "pool": "default",
        "max_per_customer": None,
    }
    fields[field] = value
    with pytest.raises(errors.InvalidRequest):
        await products.upsert(**fields)  # type: ignore[arg-type]
    assert await products.list() == []


# -- orders ------------------------------------------------------------------------------


async def test_order_upsert_and_get(mongo_db: Database) -> None:
    orders = OrderRepository(mongo_db)
    assert await orders.get("cs_1") is None
    stored = await orders.upsert(order())
    assert stored.status is OrderStatus.PAID
    assert stored.status_history == ((OrderStatus.PAID.value, stored.updated_at),)
    assert await orders.get("cs_1") == stored


async def test_order_times_read_back_as_written(mongo_db: Database) -> None:
    orders = OrderRepository(mongo_db)
    naive = datetime(2026, 1, 1, 12, 0, 0, 123456)
    stored = await orders.upsert(order(created_at=naive, status="paid"))  # type: ignore[arg-type]
    assert stored.created_at == datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert stored.status is OrderStatus.PAID
    assert await orders.get("cs_1") == stored


async def test_concurrent_upserts_of_one_session_make_one_order(mongo_db: Database) -> None:
    orders = OrderRepository(mongo_db)
    results = await asyncio.gather(*(orders.upsert(order()) for _ in range(30)))
    assert await mongo_db["orders"].count_documents({}) == 1
    stored = await orders.get("cs_1")
    assert stored is not None
    assert len(stored.status_history) == 1
    assert all(result == stored for result in results)


async def test_repeated_upsert_changes_nothing(mongo_db: Database) -> None:
    orders = OrderRepository(mongo_db)
    first = await orders.upsert(order())
    await asyncio.sleep(0.005)
    again = await orders.upsert(order())
    assert again == first
    assert await orders.get("cs_1") == first


async def test_status_changes_join_the_history(mongo_db: Database) -> None:
    orders = OrderRepository(mongo_db)
    first = await orders.upsert(order(status=OrderStatus.AWAITING_PAYMENT, payment_intent=None))
    paid = await orders.upsert(order(status=OrderStatus.PAID))
    await orders.upsert(order(status=OrderStatus.PAID))
    refunded = await orders.upsert(
        order(status=OrderStatus.REFUNDED, customer_email=None, payment_intent=None)
    )
    assert [status for status, _ in refunded.status_history] == [
        "awaiting_payment",
        "paid",
        "refunded",
    ]
    assert refunded.created_at == first.created_at
    assert refunded.updated_at >= paid.updated_at >= first.updated_at
    # A later event without the email or payment intent does not erase them.
    assert (refunded.customer_email, refunded.payment_intent) == ("buyer@example.com", "pi_1")
    assert await orders.get("cs_1") == refunded


async def test_concurrent_status_changes_keep_a_consistent_history(mongo_db: Database) -> None:
    orders = OrderRepository(mongo_db)
    statuses = [OrderStatus.PAID, OrderStatus.REFUNDED] * 10
    await asyncio.gather(*(orders.upsert(order(status=status)) for status in statuses))
    stored = await orders.get("cs_1")
    assert stored is not None
    history = [status for status, _ in stored.status_history]
    assert history[-1] == stored.status
    assert all(a != b for a, b in pairwise(history))
    assert await mongo_db["orders"].count_documents({}) == 1


# The order status ladder, written down once: (stored, incoming) -> what is stored after.
# A status only moves up; a refund is never undone by a payment; our own oversold refund is
# never relabelled by the charge.refunded that reports it.
AWAITING, FAILED, PAID, REFUNDED, OVERSOLD = (
    OrderStatus.AWAITING_PAYMENT,
    OrderStatus.PAYMENT_FAILED,
    OrderStatus.PAID,
    OrderStatus.REFUNDED,
    OrderStatus.REFUNDED_OVERSOLD,
)
INCOMING = (AWAITING, FAILED, PAID, REFUNDED, OVERSOLD)
LADDER = {
    # stored     then, for each incoming status in the order of INCOMING, what is stored
    AWAITING: dict(zip(INCOMING, (AWAITING, FAILED, PAID, REFUNDED, OVERSOLD), strict=True)),
    FAILED: dict(zip(INCOMING, (FAILED, FAILED, PAID, REFUNDED, OVERSOLD), strict=True)),
    PAID: dict(zip(INCOMING, (PAID, PAID, PAID, REFUNDED, OVERSOLD), strict=True)),
    REFUNDED: dict(zip(INCOMING, (REFUNDED, REFUNDED, REFUNDED, REFUNDED, OVERSOLD), strict=True)),
    OVERSOLD: dict(zip(INCOMING, (OVERSOLD,) * 5, strict=True)),
}


@pytest.mark.parametrize(
    ("stored", "incoming"),
    [(stored, incoming) for stored in LADDER for incoming in LADDER[stored]],
)
async def test_the_status_ladder(
    mongo_db: Database, stored: OrderStatus, incoming: OrderStatus
) -> None:
    orders = OrderRepository(mongo_db)
    await orders.upsert(order(status=stored))
    answer = await orders.upsert(order(status=incoming))
    expected = LADDER[stored][incoming]
    kept = await orders.get("cs_1")
    assert kept is not None
    assert answer.status is kept.status is expected
    # The history records each change once, in order.
    history = [status for status, _ in kept.status_history]
    assert history == ([stored.value] if expected is stored else [stored.value, expected.value])


async def test_concurrent_status_changes_end_at_the_top_of_the_ladder(mongo_db: Database) -> None:
    orders = OrderRepository(mongo_db)
    statuses = list(INCOMING) * 4
    await asyncio.gather(*(orders.upsert(order(status=status)) for status in statuses))
    stored = await orders.get("cs_1")
    assert stored is not None
    assert stored.status is OVERSOLD
    history = [OrderStatus(status) for status, _ in stored.status_history]
    assert history[-1] is OVERSOLD
    assert [LADDER[a][b] for a, b in pairwise(history)] == history[1:]  # only ever up


async def test_orders_are_found_by_status_and_by_payment_intent(mongo_db: Database) -> None:
    orders = OrderRepository(mongo_db)
    for number, status in enumerate(INCOMING):
        await orders.upsert(
            order(
                f"cs_{number}",
                status,
                reservation_id=f"default.reservation{number:08d}xx",
                payment_intent=f"pi_{number}",
            )
        )
    paid = [found.checkout_session_id async for found in orders.with_status((PAID,))]
    assert paid == ["cs_2"]
    refunds = {found.status async for found in orders.with_status((REFUNDED, OVERSOLD))}
    assert refunds == {REFUNDED, OVERSOLD}
    by_intent = await orders.get_by_payment_intent("pi_3")
    assert by_intent is not None
    assert by_intent.checkout_session_id == "cs_3"
    assert await orders.get_by_payment_intent("pi_none") is None


async def test_another_session_for_the_same_reservation_conflicts(mongo_db: Database) -> None:
    orders = OrderRepository(mongo_db)
    await orders.upsert(order("cs_1"))
    with pytest.raises(OrderConflict):
        await orders.upsert(order("cs_2", reservation_id="default.cs_1"))
    assert await orders.get("cs_2") is None


async def test_list_newest_first_with_filter_and_limit(mongo_db: Database) -> None:
    orders = OrderRepository(mongo_db)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    statuses = [OrderStatus.PAID, OrderStatus.REFUNDED, OrderStatus.PAID, OrderStatus.PAID]
    for i, status in enumerate(statuses):
        await orders.upsert(order(f"cs_{i}", status, created_at=start + timedelta(minutes=i)))
    assert [o.checkout_session_id for o in await orders.list()] == ["cs_3", "cs_2", "cs_1", "cs_0"]
    paid = await orders.list(OrderStatus.PAID, limit=2)
    assert [o.checkout_session_id for o in paid] == ["cs_3", "cs_2"]
    assert [o.checkout_session_id for o in await orders.list(OrderStatus.REFUNDED)] == ["cs_1"]
    assert await orders.list(OrderStatus.PAYMENT_FAILED) == []
    for limit in (0, 1001):
        with pytest.raises(errors.InvalidRequest):
            await orders.list(limit=limit)


# -- Stripe events -----------------------------------------------------------------------


async def test_event_duplicate_is_already_have_it(mongo_db: Database) -> None:
    events = StripeEventRepository(mongo_db)
    payload: Document = {"id": "evt_1", "data": {"object": {"metadata": {"a.b": "1"}}}}
    assert await events.record("evt_1", "checkout.session.completed", payload)
    assert not await events.record("evt_1", "checkout.session.completed", payload)
    results = await asyncio.gather(*(events.record("evt_2", "x", {}) for _ in range(10)))
    assert sorted(results) == [False] * 9 + [True]

    stored = await events.get("evt_1")
    assert stored is not None
    assert (stored["type"], stored["payload"], stored["processed_at"]) == (
        "checkout.session.completed",
        payload,
        None,
    )
    assert stored["received_at"].tzinfo == UTC
    await events.mark_processed("evt_1", "order_paid")
    processed = await events.get("evt_1")
    assert processed is not None
    assert processed["outcome"] == "order_paid"
    assert processed["processed_at"] >= processed["received_at"]
    assert await events.get("evt_unknown") is None
    await events.mark_processed("evt_unknown", "ignored")
    assert await events.get("evt_unknown") is None


async def test_event_counts_tell_failing_from_processed(mongo_db: Database) -> None:
    """On MongoDB and on nx-27017 alike (the suite runs on MONGODB_URI when it is set)."""
    events = StripeEventRepository(mongo_db)
    for event_id in ("evt_ok", "evt_retried", "evt_failing", "evt_new"):
        assert await events.record(event_id, "checkout.session.completed", {})
    await events.mark_processed("evt_ok", "committed")
    await events.mark_failed("evt_retried", "RuntimeError: once")
    await events.mark_processed("evt_retried", "committed")
    await events.mark_failed("evt_failing", "RuntimeError: still")
    assert await events.counts() == EventCounts(received=4, processed=2, failed=2, failing=1)


# -- MongoDB down ------------------------------------------------------------------------


async def test_mongodb_down_is_storage_unavailable(tmp_path: Path) -> None:
    server = MongoServer(tmp_path)
    server.start()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        server.uri, tz_aware=True, serverSelectionTimeoutMS=300, connectTimeoutMS=300
    )
    try:
        db = client["down"]
        await ensure_indexes(db)
        products, orders = ProductRepository(db), OrderRepository(db)
        events = StripeEventRepository(db)
        await products.upsert("tee", name="Tee", price=1, currency="eur", stock=1)
        server.stop()

        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: products.get("tee"),
            products.list,
            lambda: products.upsert("tee", name="Tee", price=1, currency="eur", stock=2),
            lambda: products.restore("tee", None),
            lambda: orders.get("cs_1"),
            orders.list,
            lambda: orders.upsert(order()),
            orders.count_by_status,
            lambda: events.record("evt_1", "x", {}),
            lambda: events.mark_processed("evt_1", "done"),
            lambda: events.get("evt_1"),
            lambda: ensure_indexes(db),
        ]
        for call in calls:
            with pytest.raises(errors.StorageUnavailable) as raised:
                await call()
            assert raised.value.details["backend"] == "mongodb"
            assert isinstance(raised.value.__cause__, PyMongoError)
        assert not await ping(db)

        server.start()
        assert await ping(db)
        stored = await products.get("tee")
        assert stored is not None
        assert stored.stock == 1
    finally:
        await client.close()
        server.stop()
