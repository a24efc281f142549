"""The simulator's pay page works without JavaScript: plain form posts, as a screen reader, a
test or curl sends them. Each button is one of driver.py's actions."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from tests.live import LiveShop
from tests.stripe_fake import StripeSim
from tests.test_stripe_sim import session_params


def _press(http: httpx.Client, session_id: str, action: str) -> httpx.Response:
    return http.post(f"/pay/{session_id}", data={"action": action})


def test_decline_keeps_the_session_open_and_pay_then_succeeds(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    session = client.v1.checkout.sessions.create(session_params())
    page = stripe_sim.http.get(f"/pay/{session.id}")
    for action in ("pay", "decline", "pay_later", "cancel"):
        assert f'value="{action}"' in page.text
    assert '<html lang="en">' in page.text
    assert "<script" not in page.text

    declined = _press(stripe_sim.http, session.id, "decline")
    assert (declined.status_code, declined.headers["location"]) == (
        303,
        f"/pay/{session.id}?declined=1",
    )
    shown = stripe_sim.http.get(declined.headers["location"])
    assert 'role="alert"' in shown.text
    assert "declined" in shown.text
    assert 'value="pay"' in shown.text  # the buyer may try again
    [event] = stripe_sim.state.events("payment_intent.payment_failed")
    assert event["data"]["object"]["last_payment_error"]["code"] == "card_declined"

    paid = _press(stripe_sim.http, session.id, "pay")
    assert paid.headers["location"] == f"https://shop.test/done?session={session.id}"
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
    again = _press(stripe_sim.http, session.id, "pay")
    assert again.status_code == 400
    assert "not open" in again.text


def test_pay_later_then_the_bank_answers(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    for answer, event_type, payment_status in (
        ("transfer_arrives", "checkout.session.async_payment_succeeded", "paid"),
        ("transfer_fails", "checkout.session.async_payment_failed", "unpaid"),
    ):
        session = client.v1.checkout.sessions.create(session_params())
        later = _press(stripe_sim.http, session.id, "pay_later")
        assert (later.status_code, later.headers["location"]) == (303, f"/pay/{session.id}")
        completed = client.v1.checkout.sessions.retrieve(session.id)
        assert (completed.status, completed.payment_status) == ("complete", "unpaid")
        bank = stripe_sim.http.get(f"/pay/{session.id}").text
        assert 'value="transfer_arrives"' in bank
        assert 'value="transfer_fails"' in bank
        assert f"https://shop.test/done?session={session.id}" in bank  # back to the shop now
        settled = _press(stripe_sim.http, session.id, answer)
        assert settled.headers["location"] == f"https://shop.test/done?session={session.id}"
        assert stripe_sim.state.events(event_type)[-1]["data"]["object"]["id"] == session.id
        assert client.v1.checkout.sessions.retrieve(session.id).payment_status == payment_status
        assert 'value="transfer_arrives"' not in stripe_sim.http.get(f"/pay/{session.id}").text


def test_cancel_and_unknown_actions(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    session = client.v1.checkout.sessions.create(session_params())
    assert _press(stripe_sim.http, session.id, "refund_me").status_code == 400
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    cancelled = _press(stripe_sim.http, session.id, "cancel")
    assert cancelled.headers["location"] == "https://shop.test/cart"
    page = stripe_sim.http.get(f"/pay/{session.id}").text
    assert 'value="pay"' not in page
    assert 'href="https://shop.test/cart"' in page
    assert _press(stripe_sim.http, "cs_test_nope", "pay").status_code == 404


def _checkout_state(shop: LiveShop, session_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{shop.url}/v1/checkout/{session_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    state: dict[str, Any] = answer.json()
    return state


def test_a_buyer_without_javascript_pays_through_the_real_processes(live_shop: LiveShop) -> None:
    """`reservation serve` and `reservation stripe-sim` as processes: checkout, then the pay
    page's forms (Decline, then Pay; Pay later, then the transfer), webhooks signed and
    delivered by the simulator, and the success page's data."""
    shop = live_shop
    shop.put_product("tee-black", 3, name="Black tee")
    with httpx.Client(timeout=10) as http:
        started = http.post(
            f"{shop.url}/v1/checkout", json={"items": [{"sku": "tee-black", "quantity": 1}]}
        )
        assert started.status_code == 201, started.text
        session_id, url = started.json()["checkout_session_id"], started.json()["url"]
        assert url == f"{shop.sim_url}/pay/{session_id}"
        assert "Black tee" in http.get(url).text

        declined = http.post(url, data={"action": "decline"})
        assert declined.status_code == 303
        time.sleep(0.3)  # the decline's webhook changes nothing the buyer sees
        assert _checkout_state(shop, session_id)["reservation_status"] == "held"

        paid = http.post(url, data={"action": "pay"})
        success = paid.headers["location"]
        assert success == f"{shop.url}/checkout/success?session_id={session_id}"
        page = http.get(success)
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        shop.wait_for(
            lambda: _checkout_state(shop, session_id)["order_status"] == "paid",
            "the payment's webhook made a paid order",
        )
        state = _checkout_state(shop, session_id)
        assert state["items"] == [{"sku": "tee-black", "quantity": 1}]
        assert (state["amount_total"], state["currency"]) == (2500, "eur")

        later = http.post(
            f"{shop.url}/v1/checkout", json={"items": [{"sku": "tee-black", "quantity": 2}]}
        )
        later_id, later_url = later.json()["checkout_session_id"], later.json()["url"]
        assert http.post(later_url, data={"action": "pay_later"}).status_code == 303
        shop.wait_for(
            lambda: _checkout_state(shop, later_id)["order_status"] == "awaiting_payment",
            "a pending order",
        )
        bank = http.get(later_url).text
        assert re.search(r'value="transfer_arrives"', bank)
        assert http.post(later_url, data={"action": "transfer_arrives"}).status_code == 303
        shop.wait_for(
            lambda: _checkout_state(shop, later_id)["order_status"] == "paid",
            "the transfer paid the order",
        )
    product = shop.product("tee-black")
    assert (product["sold"], product["reserved"], product["available"]) == (3, 0, 0)
    assert sorted(order["status"] for order in shop.stored_orders()) == ["paid", "paid"]
