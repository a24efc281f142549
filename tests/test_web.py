"""The storefront's and the operations page's server side: the files served, the buyer's view
of a checkout (GET /v1/checkout/{id}), the operations summary (GET /v1/ops/summary)."""

from __future__ import annotations

from typing import Any

import pytest

from reservation.api.pages import assets
from reservation.metrics import Metrics, PerSecond
from tests.api import ADMIN
from tests.shop import MakeShop, Shop


async def test_the_pages_and_their_files_are_served_but_not_described(shop: Shop) -> None:
    http = shop.http
    for path, needs in (
        ("/", "/static/shop.js"),
        ("/checkout/success", "/static/success.js"),
        ("/checkout/cancel", "/static/cancel.js"),
        ("/ops", "/static/ops.js"),
    ):
        page = await http.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert needs in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "http://" not in page.text.replace("http://www.w3.org", "")  # no CDN
    script = await http.get("/static/shop.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    cached = await http.get("/static/shop.js", headers={"If-None-Match": script.headers["etag"]})
    assert (cached.status_code, cached.content) == (304, b"")
    assert (await http.get("/static/style.css")).headers["content-type"].startswith("text/css")
    for missing in ("/static/nope.js", "/static/..%2Fapp.py", "/static/__init__.py"):
        assert (await http.get(missing)).status_code == 404
    document = (await http.get("/openapi.json")).json()
    assert not {"/", "/ops", "/checkout/success", "/static/{name}"} & set(document["paths"])
    assert {"/v1/checkout/{checkout_session_id}", "/v1/ops/summary"} <= set(document["paths"])
    # What a wheel ships (package data) is what is served.
    assert {"index.html", "success.html", "cancel.html", "ops.html", "style.css"} <= set(assets())


async def _state(shop: Shop, session_id: str) -> dict[str, Any]:
    answer = await shop.http.get(f"/v1/checkout/{session_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_the_buyer_sees_the_checkout_move_from_waiting_to_paid(shop: Shop) -> None:
    started = await shop.checkout(("tee", 2), customer_id="cus_9", customer_email="b@example.com")
    session_id = started.json()["checkout_session_id"]
    waiting = await _state(shop, session_id)
    assert waiting == {
        "checkout_session_id": session_id,
        "session_status": "open",
        "reservation_status": "held",
        "hold_expires_at": waiting["hold_expires_at"],
        "order_status": None,
        "items": [{"sku": "tee", "quantity": 2}],
        "amount_total": None,
        "currency": None,
    }
    assert (await shop.deliver(shop.sim.complete(session_id))).status_code == 200
    paid = await _state(shop, session_id)
    assert (paid["session_status"], paid["reservation_status"], paid["order_status"]) == (
        "complete",
        "committed",
        "paid",
    )
    assert (paid["amount_total"], paid["currency"]) == (5000, "eur")
    # Nothing about the customer: no email, customer id or payment intent.
    assert not {"customer_email", "customer_id", "payment_intent", "reservation_id"} & set(paid)
    assert "b@example.com" not in str(paid)
    assert "cus_9" not in str(paid)


async def test_an_expired_checkout_and_unknown_ids(shop: Shop) -> None:
    started = await shop.checkout(("cap", 1))
    session_id = started.json()["checkout_session_id"]
    assert (await shop.deliver(shop.sim.expire(session_id))).status_code == 200
    expired = await _state(shop, session_id)
    assert (expired["session_status"], expired["reservation_status"]) == ("expired", "released")
    assert expired["order_status"] is None
    for unknown in ("cs_test_nope", "x" * 300):
        answer = await shop.http.get(f"/v1/checkout/{unknown}")
        assert (answer.status_code, answer.json()["error"]) == (404, "not_found")


async def test_the_ops_summary_matches_the_sale(make_shop: MakeShop) -> None:
    shop = await make_shop()
    await shop.api.put_product("tee", 5, name="Black tee")
    await shop.api.put_product("cap", 2, name="Cap", max_per_customer=1)
    assert (await shop.http.get("/v1/ops/summary")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await shop.http.get("/v1/ops/summary", headers=wrong)).status_code == 401

    paid = (await shop.checkout(("tee", 2))).json()["checkout_session_id"]
    await shop.deliver(shop.sim.complete(paid))
    held = (await shop.api.reserve(("cap", 1))).json()["id"]
    pending = (await shop.checkout(("tee", 1))).json()["checkout_session_id"]
    await shop.deliver(shop.sim.complete(pending, "unpaid"))

    answer = await shop.http.get("/v1/ops/summary", headers=ADMIN)
    assert answer.status_code == 200
    summary = answer.json()
    products = {p["sku"]: p for p in summary["products"]}
    listed = {p["sku"]: p for p in (await shop.http.get("/v1/products")).json()["data"]}
    for sku, product in listed.items():
        assert {k: products[sku][k] for k in ("total", "held", "sold", "available")} == {
            "total": product["stock"],
            "held": product["reserved"],
            "sold": product["sold"],
            "available": product["available"],
        }
    assert (products["tee"]["sold"], products["tee"]["held"], products["cap"]["held"]) == (2, 1, 1)
    holds = summary["holds"]
    assert holds["live"] == 2
    lapsing = [hold["reservation_id"] for hold in holds["lapsing"]]
    assert held in lapsing
    assert lapsing[0] == held  # the shortest hold first: the pending payment's is extended
    assert summary["orders"]["by_status"] == {"awaiting_payment": 1, "paid": 1}
    recent = summary["orders"]["recent"]
    assert [o["checkout_session_id"] for o in recent] == [pending, paid]
    webhooks = summary["webhooks"]
    assert (webhooks["received"], webhooks["processed"], webhooks["failing"]) == (2, 2, 0)
    assert webhooks["handling_max"] is not None
    assert webhooks["delivery_lag_max"] is not None
    assert summary["stripe_gate"]["configured"] is True
    assert summary["stripe_gate"]["in_flight"] == 0
    rates = summary["rates"]
    assert len(rates["holds"]) == len(rates["sales"]) == 300
    assert (sum(rates["holds"]), sum(rates["sales"])) == (3, 1)


async def test_the_gate_s_503s_are_counted(make_shop: MakeShop) -> None:
    shop = await make_shop(stripe_timeout_seconds=0.5, stripe_max_attempts=1)
    await shop.api.put_product("tee", 5)
    shop.sim.state.add_fault("/v1/checkout/sessions", mode="500", count=None)
    assert (await shop.checkout(("tee", 1))).status_code == 503
    gate = (await shop.http.get("/v1/ops/summary", headers=ADMIN)).json()["stripe_gate"]
    assert (gate["checkouts_unavailable"], gate["answers_503"]) == (1, 1)


def test_per_second_counts_keep_the_last_seconds_only() -> None:
    now = [1000.2]
    counter = PerSecond(seconds=5, clock=lambda: now[0])
    counter.add()
    counter.add(2)
    now[0] = 1002.9
    counter.add()
    assert counter.last(5) == (1002, [0, 0, 3, 0, 1])
    assert counter.last(4, step=2) == (1002, [3, 1])
    now[0] = 1006.0  # 1000 and before have left the window; 1002 is still in it
    assert counter.last(5) == (1006, [1, 0, 0, 0, 0])
    assert counter.last(50) == (1006, [1, 0, 0, 0, 0])


@pytest.mark.parametrize("outcome", ["held", "insufficient_stock"])
def test_only_new_holds_count_as_holds(outcome: str) -> None:
    metrics = Metrics()
    metrics.count_reservation(outcome)
    assert sum(metrics.holds_per_second.last(10)[1]) == (outcome == "held")
