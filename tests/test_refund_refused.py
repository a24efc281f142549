"""A refund Stripe refuses for good (an oversold payment's refund answered 400 charge_disputed,
or 402): recorded as `refund_failed` with Stripe's error, the webhook acknowledged (200, not a
500 Stripe redelivers for days), shown on /ops and /metrics, retried by the sweeper with backoff
within a window, and retried or settled by an admin. The simulator refuses the refunds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from persistence.mongo import utc_now
from reservation.operations.sweeper import sweep
from tests.api import ADMIN
from tests.conftest import age_hold
from tests.shop import Shop

DISPUTED = "This charge is disputed and cannot be refunded (simulated)."


async def oversold_payment(shop: Shop) -> tuple[str, dict[str, Any]]:
    """A buyer pays for 4 after their hold lapsed and the crowd took 3 of the 5: no stock left."""
    answer = await shop.checkout(("tee", 4))
    assert answer.status_code == 201, answer.text
    rid, session_id = answer.json()["reservation_id"], answer.json()["checkout_session_id"]
    services = shop.api.services
    await age_hold(services.redis, services.inventory.keys, rid)
    assert (await shop.checkout(("tee", 3))).status_code == 201
    return session_id, shop.sim.complete(session_id, "paid")


def refuse_refunds(shop: Shop, mode: str = "400", code: str = "charge_disputed") -> None:
    shop.sim.fault("/v1/refunds", mode=mode, count=None, code=code, message=DISPUTED)


def refund_requests(shop: Shop) -> list[dict[str, Any]]:
    return shop.sim.requests("POST", "/v1/refunds")


async def outcome(shop: Shop, event: dict[str, Any]) -> str:
    """What the service did with an event, as it recorded it."""
    stored = await shop.api.services.events.get(event["id"])
    assert stored is not None
    return str(stored["outcome"])


async def order_status(shop: Shop, session_id: str) -> str:
    order = await shop.api.services.orders.get(session_id)
    assert order is not None
    return order.status.value


async def counts(shop: Shop) -> tuple[int, int, int]:
    product = await shop.product("tee")
    return product["reserved"], product["sold"], product["available"]


async def failed_list(shop: Shop) -> list[dict[str, Any]]:
    answer = await shop.http.get("/v1/refunds/failed", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


async def refused(shop: Shop) -> str:
    """An oversold payment whose refund Stripe refuses: its session id."""
    session_id, paid = await oversold_payment(shop)
    refuse_refunds(shop)
    answer = await shop.deliver(paid)
    assert answer.status_code == 200, answer.text
    assert await outcome(shop, paid) == "refund_failed"
    return session_id


async def make_due(shop: Shop, session_id: str, **moved: timedelta) -> None:
    """As if time had passed: the next try is due now (and the first refusal `moved` back)."""
    fields: dict[str, Any] = {"next_attempt_at": utc_now() - timedelta(seconds=1)}
    fields.update({name: utc_now() - delta for name, delta in moved.items()})
    collection = shop.api.services.db["failed_refunds"]
    key = {"checkout_session_id": session_id}
    document = await collection.find_one(key)
    assert document is not None
    # A whole-document replace: nx-27017 would store a datetime given to $set as a string.
    await collection.replace_one(key, {**document, **fields})


def metric(text: str, name: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(name)]
    return float(line.rsplit(" ", 1)[1])


@pytest.mark.parametrize(("mode", "code"), [("400", "charge_disputed"), ("402", "card_declined")])
async def test_a_refused_refund_is_recorded_and_the_webhook_acknowledged(
    shop: Shop, mode: str, code: str
) -> None:
    session_id, paid = await oversold_payment(shop)
    refuse_refunds(shop, mode, code)
    answer = await shop.deliver(paid)
    assert answer.status_code == 200, answer.text
    assert await outcome(shop, paid) == "refund_failed"
    assert await order_status(shop, session_id) == "refund_failed"
    (failed,) = await failed_list(shop)
    assert failed["checkout_session_id"] == session_id
    assert (failed["code"], failed["message"]) == (code, DISPUTED)
    assert (failed["state"], failed["attempts"], failed["order_status"]) == (
        "failed",
        1,
        "refund_failed",
    )
    assert failed["payment_intent"] == paid["data"]["object"]["payment_intent"]
    # Stripe's redeliveries are acknowledged and ask Stripe nothing more.
    asked = len(refund_requests(shop))
    for event_id in (paid["id"], "evt_redelivered"):
        again = await shop.deliver(dict(paid, id=event_id))
        assert again.status_code == 200, again.text
    assert len(refund_requests(shop)) == asked == 1
    assert shop.sim.state.refunds == {}
    assert await counts(shop) == (3, 0, 2)  # nothing sold to the refused buyer


async def test_ops_and_metrics_show_a_refused_refund(shop: Shop) -> None:
    await refused(shop)
    summary = (await shop.http.get("/v1/ops/summary", headers=ADMIN)).json()
    assert summary["orders"]["by_status"]["refund_failed"] == 1
    text = (await shop.http.get("/metrics")).text
    assert metric(text, 'reservation_refunds_refused_total{code="charge_disputed"}') == 1.0
    assert metric(text, "reservation_refunds_failed ") == 1.0
    labels = 'outcome="refund_failed",type="checkout.session.completed"'
    assert metric(text, f"reservation_webhook_events_total{{{labels}}}") == 1.0


async def test_the_sweeper_retries_with_backoff_until_stripe_refunds(shop: Shop) -> None:
    session_id = await refused(shop)
    services = shop.api.services
    assert (await sweep(services)).refunds_retried == 0  # not due yet: no request to Stripe
    assert len(refund_requests(shop)) == 1
    await make_due(shop, session_id)
    assert (await sweep(services)).refunds_retried == 1
    (failed,) = await failed_list(shop)
    assert failed["attempts"] == 2
    stored = await services.webhooks.payments.failed_refunds.get(session_id)
    assert stored is not None
    # The backoff doubles: 60 s after the first refusal, 120 s after the second.
    assert stored.next_attempt_at - stored.last_failed_at == timedelta(seconds=120)
    keys = [request["idempotency_key"] for request in refund_requests(shop)]
    assert keys == [f"refund-oversold-{session_id}", f"refund-oversold-{session_id}-retry-1"]
    shop.sim.clear_faults()  # Stripe would refund now
    await make_due(shop, session_id)
    assert (await sweep(services)).refunds_retried == 1
    assert await order_status(shop, session_id) == "refunded_oversold"
    assert await failed_list(shop) == []
    (refund,) = shop.sim.state.refunds.values()
    assert refund["amount"] == 4 * 2500
    assert refund["metadata"] == {"reason": "oversold", "checkout_session_id": session_id}
    # Stripe's charge.refunded for it changes nothing more; nothing goes back on sale.
    (refunded,) = shop.sim.events("charge.refunded")
    answer = await shop.deliver(refunded)
    assert answer.status_code == 200, answer.text
    assert await outcome(shop, refunded) == "refunded_oversold"
    assert await order_status(shop, session_id) == "refunded_oversold"
    assert await counts(shop) == (3, 0, 2)
    text = (await shop.http.get("/metrics")).text
    assert metric(text, "reservation_refunds_failed ") == 0.0


async def test_the_sweeper_stops_after_the_window_and_an_admin_retries(shop: Shop) -> None:
    session_id = await refused(shop)
    await make_due(shop, session_id, first_failed_at=timedelta(days=2))
    assert (await sweep(shop.api.services)).refunds_retried == 0
    assert len(refund_requests(shop)) == 1  # past the window: only a person asks again
    path = f"/v1/refunds/{session_id}/retry"
    assert (await shop.http.post(path)).status_code == 401
    again = await shop.http.post(path, headers=ADMIN)  # still refused
    assert again.status_code == 200, again.text
    assert (again.json()["state"], again.json()["attempts"]) == ("failed", 2)
    shop.sim.clear_faults()
    done = await shop.http.post(path, headers=ADMIN)
    assert done.status_code == 200, done.text
    assert (done.json()["state"], done.json()["order_status"]) == ("refunded", "refunded_oversold")
    assert len(shop.sim.state.refunds) == 1
    twice = await shop.http.post(path, headers=ADMIN)
    assert (twice.status_code, twice.json()["error"]) == (409, "refund_not_failed")
    assert len(shop.sim.state.refunds) == 1


async def test_an_admin_settles_a_refused_refund_by_hand(shop: Shop) -> None:
    session_id = await refused(shop)
    path = f"/v1/refunds/{session_id}/settle"
    bad = await shop.http.post(path, headers=ADMIN, json={"note": 5})
    assert (bad.status_code, bad.json()["error"]) == (422, "invalid_request")
    assert await order_status(shop, session_id) == "refund_failed"
    note = "refunded by bank transfer, ticket 1234"
    settled = await shop.http.post(path, headers=ADMIN, json={"note": note})
    assert settled.status_code == 200, settled.text
    body = settled.json()
    assert (body["state"], body["order_status"], body["settled_note"]) == (
        "settled",
        "refund_settled",
        note,
    )
    assert (await shop.http.post(path, headers=ADMIN)).status_code == 200  # idempotent
    assert await failed_list(shop) == []
    await make_due(shop, session_id)
    assert (await sweep(shop.api.services)).refunds_retried == 0
    retried = await shop.http.post(f"/v1/refunds/{session_id}/retry", headers=ADMIN)
    assert (retried.status_code, retried.json()["error"]) == (409, "refund_not_failed")
    assert len(refund_requests(shop)) == 1
    missing = await shop.http.post("/v1/refunds/cs_unknown/settle", headers=ADMIN)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")


async def test_a_dashboard_refund_of_a_refused_one_closes_it(shop: Shop) -> None:
    session_id = await refused(shop)
    order = await shop.api.services.orders.get(session_id)
    assert order is not None
    assert order.payment_intent is not None
    shop.sim.clear_faults()
    refunded = shop.sim.refund_event(order.payment_intent)  # the merchant, in the Dashboard
    answer = await shop.deliver(refunded)
    assert answer.status_code == 200, answer.text
    assert await outcome(shop, refunded) == "refunded_oversold"
    assert await order_status(shop, session_id) == "refunded_oversold"
    assert await failed_list(shop) == []
    assert await counts(shop) == (3, 0, 2)  # never sold: nothing restocked


async def test_a_settled_refund_refunded_later_keeps_its_note(shop: Shop) -> None:
    session_id = await refused(shop)
    note = "customer agreed to wait for the dispute"
    path = f"/v1/refunds/{session_id}/settle"
    assert (await shop.http.post(path, headers=ADMIN, json={"note": note})).status_code == 200
    order = await shop.api.services.orders.get(session_id)
    assert order is not None
    assert order.payment_intent is not None
    shop.sim.clear_faults()
    refunded = shop.sim.refund_event(order.payment_intent)
    assert (await shop.deliver(refunded)).status_code == 200
    assert await order_status(shop, session_id) == "refunded_oversold"
    stored = await shop.api.services.webhooks.payments.failed_refunds.get(session_id)
    assert stored is not None
    assert (stored.state, stored.settled_note) == ("refunded", note)


async def test_stripe_down_during_a_retry_leaves_the_refund_due(shop: Shop) -> None:
    session_id = await refused(shop)
    shop.sim.clear_faults()
    shop.sim.fault("/v1/refunds", mode="500", count=None)  # Stripe unavailable, not refusing
    await make_due(shop, session_id)
    assert (await sweep(shop.api.services)).refunds_retried == 1
    (failed,) = await failed_list(shop)
    assert (failed["attempts"], failed["code"], failed["state"]) == (1, "charge_disputed", "failed")
    retried = await shop.http.post(f"/v1/refunds/{session_id}/retry", headers=ADMIN)
    assert (retried.status_code, retried.json()["error"]) == (503, "payment_provider_unavailable")
    assert await order_status(shop, session_id) == "refund_failed"
    assert shop.sim.state.refunds == {}
    shop.sim.clear_faults()
    assert (await sweep(shop.api.services)).refunds_retried == 1  # still due: tried again
    assert await order_status(shop, session_id) == "refunded_oversold"
