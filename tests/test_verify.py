"""The invariant verifier (loadtests.verify): green after a clean sale, red for each invariant
broken on purpose, on real Redis, MongoDB and the Stripe simulator."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

from domain.statuses import OrderStatus
from loadtests.verify import Report, verify
from persistence.orders import Order, OrderLine
from tests.conftest import age_hold
from tests.shop import Shop


async def purchase(shop: Shop, *items: tuple[str, int], paid: bool = True) -> tuple[str, str]:
    answer = await shop.checkout(*items)
    assert answer.status_code == 201, answer.text
    rid, session_id = answer.json()["reservation_id"], answer.json()["checkout_session_id"]
    if paid:
        assert (await shop.deliver(shop.sim.complete(session_id, "paid"))).status_code == 200
    return rid, session_id


async def report(shop: Shop) -> Report:
    return await verify(shop.api.services.settings)


def broken(found: Report) -> set[str]:
    return {violation.invariant for violation in found.violations}


@pytest.fixture
async def sold(shop: Shop) -> Shop:
    """A small clean sale: two paid orders, one abandoned hold, one oversold late payment."""
    await purchase(shop, ("tee", 2))
    await purchase(shop, ("cap", 1))
    await shop.api.reserve(("cap", 1))
    late, late_session = await purchase(shop, ("tee", 3), paid=False)
    services = shop.api.services
    await age_hold(services.redis, services.inventory.keys, late)
    await purchase(shop, ("tee", 3))  # the crowd takes what the late payer held
    refunded = await shop.deliver(shop.sim.complete(late_session, "paid"))
    assert refunded.status_code == 200
    late_order = await services.orders.get(late_session)
    assert late_order is not None
    assert late_order.status is OrderStatus.REFUNDED_OVERSOLD
    return shop


async def test_a_clean_sale_passes(sold: Shop) -> None:
    found = await report(sold)
    assert found.passed, found.text()
    assert found.checked == {"SKUs": 2, "orders": 4, "sessions": 4, "refunds": 1}
    assert found.text().startswith("verifier: every invariant holds")


async def test_oversold_counters_are_reported(sold: Shop) -> None:
    services = sold.api.services
    await services.redis.hset(services.inventory.keys.pool("default").stock, "cap:total", 0)
    found = await report(sold)
    assert broken(found) == {"counters"}
    assert "cap: oversold: reserved 1 + sold 1 > total 0" in found.text()


async def test_sold_not_matching_the_orders_is_reported(sold: Shop) -> None:
    services = sold.api.services
    stock = services.inventory.keys.pool("default").stock
    await services.redis.hset(stock, "tee:total", 10)  # room for it: only `sold` is wrong
    await services.redis.hincrby(stock, "tee:sold", 1)
    found = await report(sold)
    assert broken(found) == {"sold"}
    assert "tee: Redis says 6 sold, orders say 5" in found.text()


async def test_an_order_for_a_reservation_never_held_is_reported(sold: Shop) -> None:
    await sold.api.services.orders.upsert(
        Order(
            checkout_session_id="cs_test_invented",
            reservation_id="default.neverheldneverheldxx",
            status=OrderStatus.PAYMENT_FAILED,
            items=(OrderLine("tee", 1, 2500),),
            amount_total=2500,
            currency="eur",
        )
    )
    found = await report(sold)
    assert broken(found) == {"held"}
    assert "cs_test_invented" in found.text()


async def test_a_paid_session_without_an_order_is_reported(sold: Shop) -> None:
    _, session_id = await purchase(sold, ("cap", 1), paid=False)
    sold.sim.complete(session_id, "paid")  # paid at Stripe; the webhook never arrived
    found = await report(sold)
    assert broken(found) == {"paid"}
    assert f"{session_id}: paid at Stripe, 0 orders" in found.text()


async def test_a_paid_order_of_an_unpaid_session_is_reported(sold: Shop) -> None:
    rid, session_id = await purchase(sold, ("cap", 1), paid=False)
    services = sold.api.services
    await services.orders.upsert(
        Order(session_id, rid, OrderStatus.PAID, (OrderLine("cap", 1, 1200),), 1200, "eur")
    )
    await services.inventory.holds.commit(rid)
    found = await report(sold)
    assert broken(found) == {"paid"}
    assert f"{session_id}: order is paid, the session is not" in found.text()


async def test_refunds_not_for_an_oversold_payment_and_twice_are_reported(sold: Shop) -> None:
    paid = await sold.api.services.orders.list(OrderStatus.PAID)
    good = sold.sim.state.sessions[paid[0].checkout_session_id]
    client = sold.sim.client()
    client.v1.refunds.create({"payment_intent": good["payment_intent"], "amount": 100})
    client.v1.refunds.create({"payment_intent": good["payment_intent"], "amount": 100})
    found = await report(sold)
    assert broken(found) == {"refunds"}
    text = found.text()
    assert text.count("not made by this service") == 2
    assert f"{good['id']}: 2 refunds" in text


async def test_the_merchants_refunds_pass_when_their_orders_show_them(sold: Shop) -> None:
    in_full, in_part = (await sold.api.services.orders.list(OrderStatus.PAID))[:2]
    full = sold.sim.state.sessions[in_full.checkout_session_id]["payment_intent"]
    part = sold.sim.state.sessions[in_part.checkout_session_id]["payment_intent"]
    assert (await sold.deliver(sold.sim.refund_event(full))).status_code == 200
    assert (await sold.deliver(sold.sim.refund_event(part, 200))).status_code == 200
    settings = sold.api.services.settings
    found = await verify(settings, merchant_refunds=True)
    assert found.passed, found.text()
    assert found.checked["refunds"] == 3  # the merchant's two and our oversold one
    strict = await verify(settings)
    assert broken(strict) == {"refunds"}
    assert strict.text().count("not made by this service") == 2


async def test_a_merchants_refund_its_order_does_not_show_is_reported(sold: Shop) -> None:
    paid = await sold.api.services.orders.list(OrderStatus.PAID)
    session = sold.sim.state.sessions[paid[0].checkout_session_id]
    sold.sim.refund_event(session["payment_intent"])  # refunded; the webhook never arrived
    found = await verify(sold.api.services.settings, merchant_refunds=True)
    assert broken(found) == {"refunds"}
    charged = session["amount_total"]
    assert (
        f"{session['id']}: the merchant refunded {charged} of {charged} (in full) with order paid"
        in found.text()
    )


async def test_lapsed_holds_and_open_sessions_of_lapsed_reservations_are_reported(
    sold: Shop,
) -> None:
    services = sold.api.services
    rid, session_id = await purchase(sold, ("cap", 1), paid=False)
    await age_hold(services.redis, services.inventory.keys, rid)  # nobody swept since
    found = await report(sold)
    assert broken(found) == {"lapsed"}
    assert "pool default: 1 holds past their expiry" in found.text()
    assert f"{session_id}: still open at Stripe, its reservation is expired" in found.text()


async def test_the_command_exits_1_with_the_report(sold: Shop) -> None:
    services = sold.api.services
    await services.redis.hincrby(services.inventory.keys.pool("default").stock, "tee:sold", 1)
    settings = services.settings
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "MONGODB_URI": settings.mongodb_uri or "",
        "MONGODB_DATABASE": settings.mongodb_database,
        "RESERVATION_KEY_PREFIX": settings.key_prefix,
        "STRIPE_SECRET_KEY": settings.stripe_secret_key or "",
        "STRIPE_API_BASE": settings.stripe_api_base or "",
    }
    done: Any = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "loadtests.verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "sold      tee: Redis says 6 sold, orders say 5" in done.stdout
