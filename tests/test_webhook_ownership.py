"""Webhooks act only on Checkout Sessions this service made, and only after the whole event
was checked (issue 22, items 1 and 2): a session made by anyone else on the Stripe account is
acknowledged with nothing changed and nothing refunded; a malformed one stores nothing."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from reservation.payments import session_metadata
from reservation.payments.session_metadata import PaidLine
from tests.conftest import age_hold
from tests.shop import MakeShop, Shop
from tests.stripe_fake import SESSION_SECRET

ROTATED_AWAY = "an-old-session-secret-0123456789abcdefgh"


@pytest.fixture
async def stocked(shop: Shop) -> Shop:
    """`tee` (5 at 25.00) from the shop fixture, and `zero`, sold out."""
    assert (await shop.api.put_product("zero", 0, price=500)).status_code == 200
    return shop


async def checkout(shop: Shop, *items: tuple[str, int]) -> tuple[str, str]:
    answer = await shop.checkout(*items)
    assert answer.status_code == 201, answer.text
    return answer.json()["reservation_id"], answer.json()["checkout_session_id"]


def foreign_session(shop: Shop, metadata: dict[str, str], amount: int) -> str:
    """A session made at Stripe by someone else on the account, with metadata of our shape."""
    session = shop.sim.client().v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": amount,
                        "product_data": {"name": "Not ours"},
                    },
                }
            ],
            "metadata": metadata,
            "success_url": "http://127.0.0.1/ok",
            "cancel_url": "http://127.0.0.1/cancel",
        }
    )
    return session.id


async def state(shop: Shop) -> dict[str, Any]:
    """Everything a webhook may change: orders, refunds asked of Stripe, stock."""
    db = shop.api.services.db
    orders = await db["orders"].find({}, {"_id": False, "checkout_session_id": True}).to_list()
    return {
        "orders": sorted(order["checkout_session_id"] for order in orders),
        "refunds": len(shop.sim.requests("POST", "/v1/refunds")),
        "tee": await shop.product("tee"),
        "zero": await shop.product("zero"),
    }


async def outcome(shop: Shop, event: dict[str, Any]) -> str:
    answer = await shop.deliver(event)
    assert answer.status_code == 200, answer.text
    stored = await shop.api.services.events.get(event["id"])
    assert stored is not None
    return str(stored["outcome"])


async def test_a_paid_session_made_by_another_integration_sells_and_refunds_nothing(
    stocked: Shop,
) -> None:
    shop = stocked
    before = await state(shop)
    for metadata, amount in (
        ({"reservation_id": "default.AAAAAAAAAAAAAAAAAAAAAA", "cart_0": "zero=1@500"}, 500),
        ({"reservation_id": "default.BBBBBBBBBBBBBBBBBBBBBB", "cart_0": "tee=1@2500"}, 2500),
    ):
        session_id = foreign_session(shop, metadata, amount)
        paid = shop.sim.complete(session_id, "paid")
        assert await outcome(shop, paid) == "not_ours"
    assert await state(shop) == before  # no order, no refund, no unit sold


async def test_an_expiry_of_a_session_never_made_keeps_a_live_hold(stocked: Shop) -> None:
    shop = stocked
    reservation_id, _ = await checkout(shop, ("tee", 2))
    expired = {
        "id": "evt_never_made",
        "object": "event",
        "type": "checkout.session.expired",
        "data": {
            "object": {
                "id": "cs_never_made_1",
                "object": "checkout.session",
                "amount_total": 5000,
                "metadata": {"reservation_id": reservation_id, "cart_0": "tee=2@2500"},
            }
        },
    }
    assert await outcome(shop, expired) == "not_ours"
    assert (await shop.reservation(reservation_id))["status"] == "held"


async def test_a_copy_of_our_sealed_metadata_on_another_session_is_not_ours(
    stocked: Shop,
) -> None:
    shop = stocked
    reservation_id, session_id = await checkout(shop, ("tee", 1))
    ours = shop.sim.state.sessions[session_id]["metadata"]
    assert session_metadata.is_sealed(ours, [SESSION_SECRET])
    copied = foreign_session(shop, dict(ours), 2500)
    before = await state(shop)
    assert await outcome(shop, shop.sim.expire(copied)) == "not_ours"
    assert (await shop.reservation(reservation_id))["status"] == "held"
    assert await outcome(shop, shop.sim.complete(session_id, "paid")) == "committed"
    assert (await state(shop))["orders"] == sorted([*before["orders"], session_id])


async def test_a_sealed_session_nobody_recorded_is_still_ours_after_redis_lost_it(
    stocked: Shop,
) -> None:
    """A process died between Stripe and MongoDB, and Redis lost the hold: the seal alone
    says the payment is ours, and it is committed late."""
    shop = stocked
    reservation_id, session_id = await checkout(shop, ("tee", 1))
    services = shop.api.services
    await services.db["checkout_sessions"].delete_many({"session_id": session_id})
    await age_hold(services.redis, services.inventory.keys, reservation_id)
    await services.redis.delete(services.inventory.keys.pool("default").record(reservation_id))
    assert await outcome(shop, shop.sim.complete(session_id, "paid")) == "committed_late"
    order = await services.orders.get(session_id)
    assert order is not None
    assert (order.reservation_id, order.amount_total) == (reservation_id, 2500)


async def test_a_recorded_session_whose_seal_was_rotated_away_is_ours(stocked: Shop) -> None:
    """Sealed with a secret no longer configured (or made before sessions were sealed): the
    checkout record says it is ours."""
    shop = stocked
    _, session_id = await checkout(shop, ("tee", 1))
    webhooks = shop.api.services.webhooks
    webhooks.settings = replace(webhooks.settings, session_secrets=(ROTATED_AWAY,))
    assert await outcome(shop, shop.sim.complete(session_id, "paid")) == "committed"


async def test_a_session_sealed_with_the_previous_secret_is_ours(make_shop: MakeShop) -> None:
    shop = await make_shop(
        session_secrets=("a-new-session-secret-0123456789abcdef", SESSION_SECRET)
    )
    assert (await shop.api.put_product("tee", 5, price=2500)).status_code == 200
    lines = [PaidLine("tee", 1, 2500)]
    metadata = session_metadata.encode(
        "default.CCCCCCCCCCCCCCCCCCCCCC", lines, None, SESSION_SECRET
    )
    session_id = foreign_session(shop, metadata, 2500)
    assert await outcome(shop, shop.sim.complete(session_id, "paid")) == "committed_late"
    new = session_metadata.encode("default.DDDDDDDDDDDDDDDDDDDDDD", lines, None, ROTATED_AWAY)
    session_id = foreign_session(shop, new, 2500)
    assert await outcome(shop, shop.sim.complete(session_id, "paid")) == "not_ours"


MALFORMED_CARTS = [
    "tee=-3@100",
    "tee=0@100",
    "=1@500",
    "a|b=1@1",
    "tee=1000001@1",
    "tee=1@-5",
    "tee=1@1,tee=1@1",
    "tee=12345678901234567890123@1",
    "tee=1@12345678901234567890123",
    "tee=01@100",
    "tee=+1@100",
    "tee=1@100,",
    "tee = 1@100",
]


def sealed_event(
    session_id: str,
    cart: str,
    amount: int,
    *,
    reservation_id: str = "default.EEEEEEEEEEEEEEEEEEEEEE",
) -> dict[str, Any]:
    """A paid event whose metadata carries a valid seal over whatever cart it names."""
    metadata: dict[str, str] = {"reservation_id": reservation_id, "cart_0": cart}
    metadata["seal"] = session_metadata.seal(metadata, SESSION_SECRET)
    return {
        "id": f"evt_{session_id}",
        "object": "event",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "payment_status": "paid",
                "payment_intent": f"pi_{session_id}",
                "amount_total": amount,
                "currency": "eur",
                "metadata": metadata,
            }
        },
    }


@pytest.mark.parametrize("cart", MALFORMED_CARTS)
async def test_a_malformed_cart_is_refused_with_nothing_stored(stocked: Shop, cart: str) -> None:
    """Even under a valid seal (the secret leaked, or a bug of ours): 400, no event, no order,
    no unit sold; unsealed, the same session is simply not ours."""
    shop = stocked
    before = await state(shop)
    answer = await shop.deliver(sealed_event("cs_malformed", cart, 100))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_payload"
    assert await shop.stored_events() == 0
    assert await state(shop) == before
    unsealed = sealed_event("cs_unsealed", cart, 100)
    del unsealed["data"]["object"]["metadata"]["seal"]
    assert await outcome(shop, unsealed) == "not_ours"
    assert await state(shop) == before


@pytest.mark.parametrize(
    "change",
    [
        {"amount_total": 2**70},
        {"amount_total": -300},
        {"amount_total": "2500"},
        {"amount_total": None},
        {"currency": "euro!"},
        {"payment_intent": "pi_" + "x" * 300},
    ],
)
async def test_a_field_out_of_bounds_is_refused_with_nothing_stored(
    stocked: Shop, change: dict[str, Any]
) -> None:
    shop = stocked
    before = await state(shop)
    event = sealed_event("cs_bounds", "tee=1@2500", 2500)
    event["data"]["object"].update(change)
    answer = await shop.deliver(event)
    assert answer.status_code == 400, answer.text
    assert await shop.stored_events() == 0
    assert await state(shop) == before


async def test_a_price_other_than_the_cart_s_at_checkout_is_not_acted_on(stocked: Shop) -> None:
    """Stripe's amount_total is what an order records; it must be the sealed cart's price."""
    shop = stocked
    before = await state(shop)
    assert await outcome(shop, sealed_event("cs_cheap", "tee=2@2500", 2)) == "not_ours"
    assert await state(shop) == before
    assert await outcome(shop, sealed_event("cs_fair", "tee=2@2500", 5000)) == "committed_late"
    order = await shop.api.services.orders.get("cs_fair")
    assert order is not None
    assert (order.amount_total, order.items[0].quantity, order.items[0].unit_amount) == (
        5000,
        2,
        2500,
    )


async def test_a_sku_not_in_the_catalog_is_refused_with_nothing_stored(stocked: Shop) -> None:
    shop = stocked
    before = await state(shop)
    answer = await shop.deliver(sealed_event("cs_unknown_sku", "nosuch=1@100", 100))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_payload"
    assert await shop.stored_events() == 0
    assert await state(shop) == before


async def test_our_own_events_keep_working_when_redelivered_as_copies(stocked: Shop) -> None:
    """A sealed event delivered again (a deep copy, resigned) is a duplicate, not a stranger."""
    shop = stocked
    _, session_id = await checkout(shop, ("tee", 1))
    paid = shop.sim.complete(session_id, "paid")
    assert await outcome(shop, paid) == "committed"
    assert await outcome(shop, copy.deepcopy(paid)) == "committed"
