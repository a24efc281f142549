"""POST /v1/webhooks/stripe: docs/design.md's event matrix, delivered twice and out of order;
replays of the same signed bytes refused."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.api import ADMIN
from tests.conftest import age_hold
from tests.mongo import MongoServer
from tests.shop import WEBHOOK_SECRET, MakeShop, Shop
from tests.stripe_fake import signed


async def start(shop: Shop, *items: tuple[str, int], **fields: Any) -> tuple[str, str]:
    """A checkout: (reservation id, session id)."""
    answer = await shop.checkout(*items, **fields)
    assert answer.status_code == 201, answer.text
    view = answer.json()
    return view["reservation_id"], view["checkout_session_id"]


async def deliver_twice(shop: Shop, event: dict[str, Any]) -> None:
    """Two deliveries of one event, each signed afresh as Stripe signs every attempt."""
    for _ in range(2):
        answer = await shop.deliver(event)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"received": True}


async def order(shop: Shop, session_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await shop.http.get(f"/v1/orders/{session_id}", headers=ADMIN)).json()
    return found


async def counts(shop: Shop, sku: str = "tee") -> tuple[int, int, int]:
    product = await shop.product(sku)
    return product["reserved"], product["sold"], product["available"]


async def lapse(shop: Shop, reservation_id: str) -> None:
    services = shop.api.services
    await age_hold(services.redis, services.inventory.keys, reservation_id)


async def test_paid_checkout_becomes_one_order(shop: Shop) -> None:
    rid, session_id = await start(shop, ("tee", 2), customer_email="buyer@example.com")
    event = shop.sim.complete(session_id, "paid")
    await deliver_twice(shop, event)
    paid = await order(shop, session_id)
    assert paid["status"] == "paid"
    assert paid["reservation_id"] == rid
    assert paid["items"] == [{"sku": "tee", "quantity": 2, "unit_amount": 2500}]
    assert paid["amount_total"] == 5000
    assert (paid["currency"], paid["customer_email"]) == ("eur", "buyer@example.com")
    assert paid["payment_intent"].startswith("pi_")
    assert await counts(shop) == (0, 2, 3)
    assert (await shop.reservation(rid))["status"] == "committed"
    assert shop.sim.requests("POST", "/v1/refunds") == []
    services = shop.api.services
    checkout = await services.checkouts.get(session_id)
    assert checkout is not None
    assert checkout.status.value == "complete"
    # The event is stored as it came, with what its handler did, once; the redelivery is noted.
    stored = await services.events.get(event["id"])
    assert stored is not None
    assert (stored["type"], stored["payload"], stored["outcome"]) == (
        "checkout.session.completed",
        event,
        "committed",
    )
    assert await services.webhooks.dispatch(event) == "duplicate"


async def test_the_email_stripe_collected_wins_over_the_one_given_at_checkout(shop: Shop) -> None:
    _, session_id = await start(shop, ("tee", 1))
    event = shop.sim.complete(session_id, "paid")
    event["data"]["object"]["customer_details"] = {"email": "collected@example.com"}
    await deliver_twice(shop, event)
    assert (await order(shop, session_id))["customer_email"] == "collected@example.com"


async def test_delayed_payment_then_success(shop: Shop) -> None:
    rid, session_id = await start(shop, ("tee", 1))
    await deliver_twice(shop, shop.sim.complete(session_id, "unpaid"))
    assert (await order(shop, session_id))["status"] == "awaiting_payment"
    assert (await shop.reservation(rid))["status"] == "awaiting_payment"
    assert await counts(shop) == (1, 0, 4)
    await deliver_twice(shop, shop.sim.async_payment(session_id, succeeded=True))
    assert (await order(shop, session_id))["status"] == "paid"
    assert await counts(shop) == (0, 1, 4)


async def test_delayed_payment_success_before_completed_converges(shop: Shop) -> None:
    rid, session_id = await start(shop, ("tee", 1))
    completed = shop.sim.complete(session_id, "unpaid")
    succeeded = shop.sim.async_payment(session_id, succeeded=True)
    await deliver_twice(shop, succeeded)
    await deliver_twice(shop, completed)
    assert (await order(shop, session_id))["status"] == "paid"
    assert (await shop.reservation(rid))["status"] == "committed"
    assert await counts(shop) == (0, 1, 4)


async def test_delayed_payment_failure_gives_the_units_back(shop: Shop) -> None:
    rid, session_id = await start(shop, ("tee", 2))
    completed = shop.sim.complete(session_id, "unpaid")
    failed = shop.sim.async_payment(session_id, succeeded=False)
    await deliver_twice(shop, failed)
    await deliver_twice(shop, completed)  # late and out of order: must not hold again
    assert (await order(shop, session_id))["status"] == "payment_failed"
    assert (await shop.reservation(rid))["status"] == "released"
    assert await counts(shop) == (0, 0, 5)


async def test_expired_session_releases_and_a_later_payment_commits_late(shop: Shop) -> None:
    rid, session_id = await start(shop, ("tee", 2))
    expired = shop.sim.expire(session_id)
    await deliver_twice(shop, expired)
    assert (await shop.reservation(rid))["status"] == "released"
    assert await counts(shop) == (0, 0, 5)
    # Stripe can still deliver a completion that raced the expiry: stock is free, so it sells.
    completed = dict(expired, id="evt_completed_after_expired", type="checkout.session.completed")
    completed["data"] = {
        "object": dict(
            expired["data"]["object"],
            status="complete",
            payment_status="paid",
            payment_intent="pi_late_1",
        )
    }
    await deliver_twice(shop, completed)
    assert (await order(shop, session_id))["status"] == "paid"
    assert await counts(shop) == (0, 2, 3)


async def test_payment_intent_failure_keeps_the_hold(shop: Shop) -> None:
    rid, session_id = await start(shop, ("tee", 1))
    event = shop.sim.fail_session_payment(session_id)
    assert event["type"] == "payment_intent.payment_failed"
    await deliver_twice(shop, event)
    assert (await shop.reservation(rid))["status"] == "held"
    assert await counts(shop) == (1, 0, 4)


@pytest.mark.parametrize("restock", [False, True])
async def test_full_refund_marks_the_order_refunded(make_shop: MakeShop, restock: bool) -> None:
    shop = await make_shop(restock_on_refund=restock)
    await shop.api.put_product("tee", 5, price=2500)
    _, session_id = await start(shop, ("tee", 2))
    paid = shop.sim.complete(session_id, "paid")
    await shop.deliver(paid)
    refunded = shop.sim.refund_event(paid["data"]["object"]["payment_intent"])
    await deliver_twice(shop, refunded)
    assert (await order(shop, session_id))["status"] == "refunded"
    assert await counts(shop) == ((0, 0, 5) if restock else (0, 2, 3))


async def test_unknown_events_are_acknowledged_and_ignored(shop: Shop) -> None:
    event = {
        "id": "evt_other",
        "object": "event",
        "type": "customer.created",
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    }
    await deliver_twice(shop, event)
    stored = await shop.api.services.events.get("evt_other")
    assert stored is not None
    assert stored["outcome"] == "ignored"


async def test_thirty_concurrent_deliveries_make_one_order(shop: Shop) -> None:
    # Thirty attempts of one event, each signed afresh (as Stripe would): all acknowledged.
    _, session_id = await start(shop, ("tee", 2))
    event = shop.sim.complete(session_id, "paid")
    answers = await asyncio.gather(*(shop.deliver(event) for _ in range(30)))
    assert {answer.status_code for answer in answers} == {200}
    orders = await shop.api.services.db["orders"].count_documents({})
    assert orders == 1
    assert (await order(shop, session_id))["status"] == "paid"
    assert await counts(shop) == (0, 2, 3)


async def test_late_payment_with_free_stock_is_committed_late(shop: Shop) -> None:
    rid, session_id = await start(shop, ("tee", 2))
    await lapse(shop, rid)
    assert await counts(shop) == (0, 0, 5)
    paid = shop.sim.complete(session_id, "paid")
    await deliver_twice(shop, paid)
    assert (await order(shop, session_id))["status"] == "paid"
    assert (await shop.reservation(rid))["status"] == "committed"
    assert await counts(shop) == (0, 2, 3)
    assert shop.sim.requests("POST", "/v1/refunds") == []
    stored = await shop.api.services.events.get(paid["id"])
    assert stored is not None
    assert stored["outcome"] == "committed_late"


async def test_late_payment_without_stock_is_refunded_exactly_once(shop: Shop) -> None:
    rid, session_id = await start(shop, ("tee", 4))
    await lapse(shop, rid)
    await start(shop, ("tee", 3))  # the crowd takes the units meanwhile
    event = shop.sim.complete(session_id, "paid")
    for _ in range(3):
        assert (await shop.deliver(event)).status_code == 200
    await asyncio.gather(*(shop.deliver(event) for _ in range(5)))
    refunds = shop.sim.requests("POST", "/v1/refunds")
    assert len({r["idempotency_key"] for r in refunds}) == 1
    assert len(shop.sim.state.refunds) == 1
    assert (await order(shop, session_id))["status"] == "refunded_oversold"
    assert await counts(shop) == (3, 0, 2)
    # Units freed later do not go to the refunded buyer.
    await deliver_twice(shop, dict(event, id="evt_redelivered_later"))
    assert await counts(shop) == (3, 0, 2)


async def test_order_recorded_when_redis_lost_the_reservation(shop: Shop) -> None:
    rid, session_id = await start(shop, ("tee", 1))
    services = shop.api.services
    await services.redis.delete(services.inventory.keys.pool("default").record(rid))
    await deliver_twice(shop, shop.sim.complete(session_id, "paid"))
    paid = await order(shop, session_id)
    assert (paid["status"], paid["reservation_id"]) == ("paid", rid)
    assert paid["items"] == [{"sku": "tee", "quantity": 1, "unit_amount": 2500}]


BAD_BODIES = {
    "not json": b"{not json",
    "not an event": b'{"id": "evt_1", "type": "x"}',
    "deeply nested": b"[" * 50_000 + b"]" * 50_000,
    "nested past the decoder's depth": (
        b'{"id":"evt_1","type":"x","data":{"object":{"id":"x","deep":'
        + b"[" * 200
        + b"]" * 200
        + b"}}}"
    ),
    "not utf-8": b'{"id": "evt_\xff", "type": "x", "data": {"object": {"id": "x"}}}',
    "lone surrogate": b'{"id": "evt_\\ud800", "type": "x", "data": {"object": {"id": "x"}}}',
    "event id too long": json.dumps(
        {"id": "evt_" + "x" * 300, "type": "x", "data": {"object": {"id": "x"}}}
    ).encode(),
}


@pytest.mark.parametrize(
    "case",
    [
        "wrong secret",
        "old timestamp",
        "future timestamp",
        "non-ascii header",
        "missing header",
        *BAD_BODIES,
    ],
)
async def test_bad_deliveries_are_400_and_store_nothing(shop: Shop, case: str) -> None:
    _, session_id = await start(shop, ("tee", 1))
    event = shop.sim.complete(session_id, "paid")
    if case == "wrong secret":
        answer = await shop.deliver(event, secret="whsec_wrong")
        expected = "invalid_signature"
    elif case == "old timestamp":
        answer = await shop.deliver(event, timestamp=int(time.time()) - 301)
        expected = "invalid_signature"
    elif case == "future timestamp":
        # Correctly signed, but an hour ahead: a captured delivery could be replayed till then.
        answer = await shop.deliver(event, timestamp=int(time.time()) + 3600)
        expected = "invalid_signature"
    elif case == "non-ascii header":
        body, _ = signed(event, WEBHOOK_SECRET)
        answer = await shop.http.post(
            "/v1/webhooks/stripe",
            content=body,
            headers={b"Stripe-Signature": "t=1,v1=\xff\xfe".encode("latin-1")},
        )
        expected = "invalid_signature"
    elif case == "missing header":
        answer = await shop.http.post("/v1/webhooks/stripe", content=json.dumps(event))
        expected = "invalid_signature"
    else:
        from stripesim import sign

        body = BAD_BODIES[case]
        answer = await shop.http.post(
            "/v1/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": sign(body, WEBHOOK_SECRET)},
        )
        expected = "invalid_payload"
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == expected
    assert await shop.stored_events() == 0
    assert await shop.api.services.db["orders"].count_documents({}) == 0
    assert await counts(shop) == (1, 0, 4)


async def test_a_timestamp_slightly_ahead_is_accepted(shop: Shop) -> None:
    _, session_id = await start(shop, ("tee", 1))
    # Clocks drift: within the tolerance either way is fine.
    answer = await shop.deliver(
        shop.sim.complete(session_id, "paid"), timestamp=int(time.time()) + 60
    )
    assert answer.status_code == 200, answer.text
    assert (await order(shop, session_id))["status"] == "paid"


@pytest.mark.parametrize(
    ("header", "said"),
    [
        # stripe-python reads `t` with int() after split("=", 2): these verify with the
        # library, and Stripe never sends them.
        ("t={t}=x,v1={v1}", "timestamp (t) is not a whole number of seconds: '{t}=x'"),
        ("t=+{t},v1={v1}", "timestamp (t) is not a whole number of seconds: '+{t}'"),
        ("t= {t},v1={v1}", "timestamp (t) is not a whole number of seconds"),
        ("t={t:_},v1={v1}", "timestamp (t) is not a whole number of seconds"),
        ("t={t},v1={v1},t={t}", "more than one timestamp (t=)"),
        ("v1={v1}", "has no timestamp (t=)"),
        ("t={t}", "has no v1 signature"),
        ("t={t},v1={v1_upper}", "v1 signature of the Stripe-Signature is not 64 lowercase"),
        ("t={t},v1=00", "v1 signature of the Stripe-Signature is not 64 lowercase"),
        ("t={old},v1={v1}", "s old; at most 300 s are accepted"),
        ("t={ahead},v1={v1}", "s ahead of this server's clock; at most 300 s are accepted"),
        ("t=9{t:0>40},v1={v1}", "ahead of this server's clock by more than 300 s"),
    ],
    ids=[
        "t=now=x",
        "t=+now",
        "t= now",
        "t=1_700_000_000",
        "two t",
        "no t",
        "no v1",
        "v1 upper case",
        "v1 short",
        "old",
        "ahead",
        "ahead past any clock",
    ],
)
async def test_a_signature_header_is_refused_saying_what_is_wrong(
    shop: Shop, header: str, said: str
) -> None:
    _, session_id = await start(shop, ("tee", 1))
    t = int(time.time())
    body, headers = signed(shop.sim.complete(session_id, "paid"), WEBHOOK_SECRET, t)
    v1 = headers["Stripe-Signature"].rpartition("v1=")[2]
    values = {"t": t, "v1": v1, "v1_upper": v1.upper(), "old": t - 400, "ahead": t + 400}
    dressed = header.format(**values)
    answer = await shop.post_signed(body, {**headers, "Stripe-Signature": dressed})
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_signature"), dressed
    assert said.format(**values) in answer.json()["message"], answer.json()
    assert await shop.stored_events() == 0
    assert await delivery_keys(shop) == []


async def test_event_types_become_metric_labels_only_when_handled(shop: Shop) -> None:
    _, session_id = await start(shop, ("tee", 1))
    await deliver_twice(shop, shop.sim.complete(session_id, "paid"))
    odd_type = "x" * 100_000
    odd = {"id": "evt_odd", "type": odd_type, "data": {"object": {"id": "obj_1"}}}
    await deliver_twice(shop, odd)
    metrics = (await shop.http.get("/metrics")).text
    assert odd_type[:100] not in metrics
    assert len(metrics) < 50_000
    assert 'events_total{outcome="ignored",type="other"} 1.0' in metrics
    assert 'events_total{outcome="duplicate",type="other"} 1.0' in metrics
    assert 'events_total{outcome="committed",type="checkout.session.completed"} 1.0' in metrics


async def test_no_webhook_secret_refuses_everything(make_shop: MakeShop) -> None:
    shop = await make_shop(stripe_webhook_secret=None)
    event = {"id": "evt_x", "type": "customer.created", "data": {"object": {}}}
    answer = await shop.deliver(event)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_signature")
    assert await shop.stored_events() == 0


async def test_mongodb_down_is_5xx_and_the_redelivery_makes_one_order(
    make_shop: MakeShop, tmp_path: Path
) -> None:
    mongo = MongoServer(tmp_path)
    uri = mongo.start()
    try:
        shop = await make_shop(mongodb_uri=uri)
        await shop.api.put_product("tee", 5, price=2500)
        _, session_id = await start(shop, ("tee", 2))
        event = shop.sim.complete(session_id, "paid")
        mongo.stop()
        failed = await shop.deliver(event)
        assert failed.status_code == 503
        assert failed.json()["error"] == "storage_unavailable"
        mongo.start()
        await deliver_twice(shop, event)
        assert await shop.api.services.db["orders"].count_documents({}) == 1
        assert (await order(shop, session_id))["status"] == "paid"
        assert await counts(shop) == (0, 2, 3)
    finally:
        mongo.stop()


def completed_event(event_id: str, metadata: dict[str, str]) -> dict[str, Any]:
    session = {
        "id": f"cs_test_{event_id}",
        "object": "checkout.session",
        "payment_status": "paid",
        "metadata": metadata,
    }
    return {
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "data": {"object": session},
    }


async def test_sessions_this_service_did_not_make_are_acknowledged(shop: Shop) -> None:
    foreign = completed_event("evt_foreign", {})
    bogus = completed_event("evt_bogus", {"reservation_id": "{x}", "cart_0": "tee=1@1"})
    for event in (foreign, bogus):
        await deliver_twice(shop, event)
        stored = await shop.api.services.events.get(event["id"])
        assert stored is not None
        assert stored["outcome"] == "not_ours"
    assert await shop.api.services.db["orders"].count_documents({}) == 0


async def test_refund_of_an_order_redis_forgot_still_converges(make_shop: MakeShop) -> None:
    shop = await make_shop(restock_on_refund=True)
    await shop.api.put_product("tee", 5, price=2500)
    rid, session_id = await start(shop, ("tee", 1))
    paid = shop.sim.complete(session_id, "paid")
    await shop.deliver(paid)
    services = shop.api.services
    await services.redis.delete(services.inventory.keys.pool("default").record(rid))
    await deliver_twice(shop, shop.sim.refund_event(paid["data"]["object"]["payment_intent"]))
    assert (await order(shop, session_id))["status"] == "refunded"


async def test_a_refund_delivered_before_its_order_is_kept(shop: Shop) -> None:
    _, session_id = await start(shop, ("tee", 2))
    paid = shop.sim.complete(session_id, "paid")
    refunded = shop.sim.refund_event(paid["data"]["object"]["payment_intent"])
    await deliver_twice(shop, refunded)
    await deliver_twice(shop, paid)
    assert (await order(shop, session_id))["status"] == "refunded"
    assert await counts(shop) == (0, 2, 3)  # a refund keeps the units sold unless configured


async def test_our_oversold_refund_stays_refunded_oversold(shop: Shop) -> None:
    rid, session_id = await start(shop, ("tee", 4))
    await lapse(shop, rid)
    await start(shop, ("tee", 3))
    paid = shop.sim.complete(session_id, "paid")
    await shop.deliver(paid)
    # Stripe then reports the refund we made: it must not relabel the order.
    for event in shop.sim.events("charge.refunded"):
        await deliver_twice(shop, event)
    assert shop.sim.events("charge.refunded")
    assert (await order(shop, session_id))["status"] == "refunded_oversold"


async def test_payment_after_redis_lost_its_counters_waits_for_reconcile(shop: Shop) -> None:
    rid, session_id = await start(shop, ("tee", 2))
    services = shop.api.services
    pool = services.inventory.keys.pool("default")
    for key in [*pool.shared, pool.record(rid)]:
        await services.redis.delete(key)
    paid = shop.sim.complete(session_id, "paid")
    failed = await shop.deliver(paid)
    assert (failed.status_code, failed.json()["error"]) == (503, "storage_unavailable")
    assert shop.sim.requests("POST", "/v1/refunds") == []
    from reservation.operations.reconcile import reconcile

    await reconcile(services.inventory, services.products, services.orders)
    await deliver_twice(shop, paid)
    assert (await order(shop, session_id))["status"] == "paid"
    assert await counts(shop) == (0, 2, 3)


async def test_signed_events_of_the_wrong_shape_are_answered_cleanly(shop: Shop) -> None:
    listed = completed_event("evt_listed", {})
    listed["data"]["object"]["metadata"] = ["not", "a", "hash"]
    answer = await shop.deliver(listed)
    assert answer.status_code == 200, answer.text
    stored = await shop.api.services.events.get("evt_listed")
    assert stored is not None
    assert stored["outcome"] == "not_ours"
    _, session_id = await start(shop, ("tee", 1))
    event = shop.sim.complete(session_id, "paid")
    event["data"]["object"]["amount_total"] = "a lot"
    event["data"]["object"]["customer_details"] = "somebody"
    odd = await shop.deliver(event)
    assert (odd.status_code, odd.json()["error"]) == (400, "invalid_payload")
    assert await shop.api.services.db["orders"].count_documents({}) == 0


# -- replays: the same signed bytes again -----------------------------------------------------


async def stored_state(shop: Shop) -> dict[str, Any]:
    """What a delivery could change: MongoDB's orders, events, sessions and pending refunds,
    and every Redis key of the test (serialized)."""
    services = shop.api.services
    mongo = {
        name: await services.db[name].find({}, {"_id": 0}).sort("_id").to_list(None)
        for name in ("orders", "stripe_events", "checkout_sessions", "pending_refunds")
    }
    keys = sorted(
        [key async for key in services.redis.scan_iter(match=services.inventory.keys.pattern())]
    )
    return {"mongo": mongo, "redis": {key: await services.redis.dump(key) for key in keys}}


async def orders_and_stock(shop: Shop) -> tuple[list[dict[str, Any]], tuple[int, int, int]]:
    found = await shop.api.services.db["orders"].find({}, {"_id": 0}).to_list(None)
    return found, await counts(shop)


async def delivery_keys(shop: Shop) -> list[bytes]:
    services = shop.api.services
    pattern = services.inventory.keys.webhook_delivery(0, "x").rsplit(":", 2)[0] + ":*"
    return [key async for key in services.redis.scan_iter(match=pattern)]


async def test_a_replayed_delivery_is_400_and_changes_nothing(shop: Shop) -> None:
    rid, session_id = await start(shop, ("tee", 2))
    body, headers = signed(shop.sim.complete(session_id, "paid"), WEBHOOK_SECRET)
    first = await shop.post_signed(body, headers)
    assert first.status_code == 200, first.text
    before = await stored_state(shop)
    replayed = await shop.post_signed(body, headers)
    assert (replayed.status_code, replayed.json()["error"]) == (400, "replayed_signature")
    assert await stored_state(shop) == before
    assert (await order(shop, session_id))["status"] == "paid"
    assert (await shop.reservation(rid))["status"] == "committed"
    assert await counts(shop) == (0, 2, 3)


async def test_a_replay_of_a_delivery_that_has_not_been_handled_yet_is_refused(shop: Shop) -> None:
    # Thirty copies of the same bytes at once: one is handled, the others refused unhandled.
    _, session_id = await start(shop, ("tee", 2))
    body, headers = signed(shop.sim.complete(session_id, "paid"), WEBHOOK_SECRET)
    answers = await asyncio.gather(*(shop.post_signed(body, headers) for _ in range(30)))
    assert sorted(answer.status_code for answer in answers) == [200] + [400] * 29
    assert {a.json()["error"] for a in answers if a.status_code == 400} == {"replayed_signature"}
    assert await shop.api.services.db["orders"].count_documents({}) == 1
    assert await counts(shop) == (0, 2, 3)


async def test_a_resigned_duplicate_is_acknowledged_and_changes_nothing(shop: Shop) -> None:
    _, session_id = await start(shop, ("tee", 2))
    event = shop.sim.complete(session_id, "paid")
    now = int(time.time())
    assert (await shop.deliver(event, timestamp=now)).status_code == 200
    before = await stored_state(shop)
    # The same event, signed again one second later (Stripe's retry or duplicate delivery).
    again = await shop.deliver(event, timestamp=now + 1)
    assert again.status_code == 200, again.text
    after = await stored_state(shop)
    assert after["mongo"] == before["mongo"]  # one order, one event record, as they were
    new_keys = set(after["redis"]) - set(before["redis"])
    assert new_keys == {
        shop.api.services.inventory.keys.webhook_delivery(now + 1, _body_digest(again)).encode()
    }
    assert await counts(shop) == (0, 2, 3)
    metrics = (await shop.http.get("/metrics")).text
    assert 'events_total{outcome="duplicate",type="checkout.session.completed"} 1.0' in metrics


def _body_digest(answer: Any) -> str:
    return hashlib.sha256(answer.request.content).hexdigest()


async def test_a_forged_signature_marks_nothing(shop: Shop) -> None:
    _, session_id = await start(shop, ("tee", 1))
    event = shop.sim.complete(session_id, "paid")
    now = int(time.time())
    body, headers = signed(event, WEBHOOK_SECRET, now)
    genuine = headers["Stripe-Signature"]
    forgeries = [
        signed(event, "whsec_wrong", now)[1]["Stripe-Signature"],
        f"t={now},v1={'0' * 64}",
        f"t={now + 1},{genuine.partition(',')[2]}",  # the genuine signature, another timestamp
        f"t={now}",
        "v1=" + genuine.rpartition("v1=")[2],
    ]
    for forged in forgeries:
        answer = await shop.post_signed(body, {**headers, "Stripe-Signature": forged})
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_signature")
    assert await delivery_keys(shop) == []
    assert await shop.stored_events() == 0
    # The genuine delivery, with the timestamp the forgeries used, is not taken for a replay.
    assert (await shop.post_signed(body, headers)).status_code == 200
    assert (await order(shop, session_id))["status"] == "paid"


async def test_a_replay_dressed_up_is_still_a_replay(shop: Shop) -> None:
    # stripe-python accepts a header with more v1 values than the one that matches, and reads
    # `t` with int(): neither makes the same signed bytes a new delivery.
    _, session_id = await start(shop, ("tee", 1))
    now = int(time.time())
    body, headers = signed(shop.sim.complete(session_id, "paid"), WEBHOOK_SECRET, now)
    assert (await shop.post_signed(body, headers)).status_code == 200
    genuine = headers["Stripe-Signature"]
    signature = genuine.rpartition("v1=")[2]
    for dressed in (
        f"{genuine},v1={'0' * 64}",
        f"t={now},v1={'f' * 64},v1={signature}",
        f"t=0{now},v1={signature}",
        f"{genuine},v0=anything",
    ):
        answer = await shop.post_signed(body, {**headers, "Stripe-Signature": dressed})
        assert (answer.status_code, answer.json()["error"]) == (400, "replayed_signature"), dressed


async def test_the_issue_s_four_webhooks_change_no_order(shop: Shop) -> None:
    """Old, replayed, wrongly signed: 400. Correctly signed for a session this service never
    made: acknowledged and ignored. None of them changes an order or the stock."""
    _, session_id = await start(shop, ("tee", 2))
    paid = shop.sim.complete(session_id, "paid")
    body, headers = signed(paid, WEBHOOK_SECRET)
    assert (await shop.post_signed(body, headers)).status_code == 200
    before = await orders_and_stock(shop)
    assert before[1] == (0, 2, 3)

    old = await shop.deliver(paid, timestamp=int(time.time()) - 301)
    replayed = await shop.post_signed(body, headers)
    wrong_secret = await shop.deliver(paid, secret="whsec_not_ours")
    foreign = await shop.deliver(completed_event("evt_never_ours", {}))

    assert (old.status_code, old.json()["error"]) == (400, "invalid_signature")
    assert (replayed.status_code, replayed.json()["error"]) == (400, "replayed_signature")
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (400, "invalid_signature")
    assert (foreign.status_code, foreign.json()) == (200, {"received": True})
    stored = await shop.api.services.events.get("evt_never_ours")
    assert stored is not None
    assert stored["outcome"] == "not_ours"
    assert await orders_and_stock(shop) == before


async def test_redis_down_answers_503_and_stores_nothing(make_shop: MakeShop) -> None:
    from harness.servers import free_port

    shop = await make_shop(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    answer = await shop.deliver(completed_event("evt_while_redis_is_down", {}))
    assert (answer.status_code, answer.json()["error"]) == (503, "storage_unavailable")
    assert answer.headers["retry-after"]
    assert await shop.stored_events() == 0
