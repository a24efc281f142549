"""The waiting list in a real browser (Debian's Chromium through Playwright), behind the demo's
shop backend, against `reservation serve` and `reservation stripe-sim` as processes: a buyer
joins a sold-out product's list, its unit comes back, the service's signed webhook reaches the
shop backend, which tells the buyer's page; the buyer pays the offer through the simulator.
And /ops showing the lines."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pymongo
import pytest
from playwright.sync_api import Page, Route, expect

from harness.customer_tokens import bearer, mint
from tests.api import ADMIN, ADMIN_TOKEN
from tests.browser import CHROMIUM, NewBuyer, card, screenshot
from tests.live import CUSTOMER_TOKEN_SECRET, LiveShop

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does)",
)


def as_customer(customer: str) -> dict[str, str]:
    return bearer(mint(customer, CUSTOMER_TOKEN_SECRET))


def shop_events(shop: LiveShop) -> list[dict[str, Any]]:
    """The service's outbox of shop webhooks, as stored in MongoDB."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(shop.mongodb_uri)
    try:
        return list(client[shop.server.database]["shop_events"].find({}, {"_id": False}))
    finally:
        client.close()


def waitlist_of(page: Page, sku: str) -> Any:
    return card(page, sku).locator('[data-field="waitlist"]')


def test_a_buyer_in_line_is_told_by_the_shop_and_pays_the_unit_that_came_back(
    named_live_shop: LiveShop, new_buyer: NewBuyer
) -> None:
    shop = named_live_shop
    shop.put_product("vinyl", 1, name="Test pressing", price=4500, max_per_customer=1)
    with shop.http() as http:
        held = http.post(
            "/v1/reservations",
            json={"items": [{"sku": "vinyl", "quantity": 1}], "customer_id": "ada"},
            headers=as_customer("ada"),
        )
        assert held.status_code == 201, held.text
        first = http.post("/v1/waitlist/vinyl", json={"quantity": 1}, headers=as_customer("cy"))
        assert first.status_code == 201, first.text

    page = new_buyer(shop)
    page.goto("/")
    page.get_by_label("Your name").fill("Bea")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#who-shown")).to_have_text("Bea")
    listed = waitlist_of(page, "vinyl")
    expect(listed.get_by_role("status")).to_have_text("1 waiting in line.")
    listed.get_by_role("button", name="Join the waiting list").click()
    expect(listed.get_by_role("status")).to_have_text("You are 2nd in line for a unit.")
    expect(listed.get_by_role("button", name="Join the waiting list")).to_be_hidden()
    with shop.http() as http:
        entry = http.get("/v1/waitlist/vinyl/bea", headers=as_customer("bea")).json()
        assert (entry["status"], entry["position"]) == ("waiting", 2)
        # Cy leaves: Bea is the head (her page reads its entry again).
        assert http.delete("/v1/waitlist/vinyl/cy", headers=as_customer("cy")).status_code == 204
    expect(listed.get_by_role("status")).to_have_text("You are 1st in line for a unit.")
    expect(listed.get_by_role("button", name="Leave")).to_be_visible()

    # From here the page hears of the offer from the shop's backend alone: its reads of the
    # entry fail, as if the service could not answer them.
    def unreachable(route: Route) -> None:
        route.abort() if route.request.method == "GET" else route.continue_()

    page.route(re.compile(r".*/v1/waitlist/.*"), unreachable)
    with shop.http() as http:
        released = http.delete(f"/v1/reservations/{held.json()['id']}", headers=as_customer("ada"))
        assert released.status_code == 200, released.text
        offered = http.get("/v1/waitlist/vinyl/bea", headers=as_customer("bea")).json()
    assert offered["status"] == "offered"
    offer_id = offered["offer"]["reservation_id"]
    assert ".wl-" in offer_id
    expect(listed.get_by_role("status")).to_have_text(
        "A unit is waiting for you: pay before the time runs out."
    )
    expect(listed.get_by_role("timer")).to_have_text(re.compile(r"^Held for you for \d+:\d\d$"))
    expect(listed.get_by_role("button", name="Leave")).to_be_hidden()
    screenshot(page, "waitlist-offer.png")

    # The shop's backend took the signed event once; the service's outbox has it delivered.
    with shop.http() as http:
        told = http.get("/shop/offers", headers=as_customer("bea")).json()
    assert [(e["type"], e["reservation_id"]) for e in told["events"]] == [
        ("waitlist.offer_created", offer_id)
    ]
    [sent] = [e for e in shop_events(shop) if e["customer_id"] == "bea"]
    assert sent["state"] == "delivered"
    assert sent["event_id"] == told["events"][0]["id"]

    page.unroute(re.compile(r".*/v1/waitlist/.*"))
    listed.get_by_role("button", name="Pay").click()
    page.wait_for_url(f"{shop.sim_url}/pay/*")
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_url(f"{shop.url}/checkout/success?session_id=*")
    expect(page.locator("main")).to_have_attribute("data-status", "paid")
    [order] = shop.stored_orders()
    assert (order["status"], order["reservation_id"]) == ("paid", offer_id)
    assert [(line["sku"], line["quantity"]) for line in order["items"]] == [("vinyl", 1)]
    with shop.http() as http:
        bought = http.get("/v1/waitlist/vinyl/bea", headers=as_customer("bea")).json()
    assert bought["status"] == "bought"
    product = shop.product("vinyl")
    assert (product["sold"], product["reserved"], product["waitlist"]) == (1, 0, 0)


def test_ops_shows_each_waiting_list_s_line_and_offers(
    live_shop: LiveShop, new_buyer: NewBuyer
) -> None:
    shop = live_shop
    shop.put_product("vinyl", 0, name="Test pressing")
    shop.put_product("tee", 5, name="Tee")
    with shop.http() as http:
        for customer in ("ada", "bea", "cy"):
            joined = http.post("/v1/waitlist/vinyl", json={"quantity": 1, "customer_id": customer})
            assert joined.status_code == 201, joined.text
    page = new_buyer(shop)
    page.goto("/ops")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Show the sale").click()
    row = page.locator('#waitlist-lines tr[data-sku="vinyl"]')
    expect(page.get_by_role("heading", name="Waiting lists")).to_be_visible()
    expect(row.locator('[data-field="waiting"]')).to_have_text("3")
    expect(row.locator('[data-field="offers"]')).to_have_text("0")
    expect(row.locator('[data-field="head"]')).to_have_text("ada (1)")
    expect(page.locator("#waitlist-lines tbody tr")).to_have_count(1)  # the tee has none

    shop.put_product("vinyl", 1, name="Test pressing")  # one more unit: offered to Ada
    expect(row.locator('[data-field="waiting"]')).to_have_text("2")
    expect(row.locator('[data-field="offers"]')).to_have_text("1")
    expect(row.locator('[data-field="head"]')).to_have_text("bea (1)")
    with shop.http() as http:
        line = http.get("/v1/waitlist/vinyl", headers=ADMIN).json()
        assert (line["waiting"], line["offers"]) == (2, 1)
        entry = http.get("/v1/waitlist/vinyl/ada").json()
        assert entry["status"] == "offered"
        # The offer is given back: Bea's now; Cy alone waits.
        given = http.delete(f"/v1/reservations/{entry['offer']['reservation_id']}")
        assert given.status_code == 200, given.text
    expect(row.locator('[data-field="waiting"]')).to_have_text("1")
    expect(row.locator('[data-field="offers"]')).to_have_text("1")
    expect(row.locator('[data-field="head"]')).to_have_text("cy (1)")
    screenshot(page, "operations-waitlist.png")


def test_the_offers_of_the_shop_need_its_token(named_live_shop: LiveShop) -> None:
    with httpx.Client(base_url=named_live_shop.url, timeout=10) as http:
        assert http.get("/shop").json()["offers"] is True
        assert http.get("/shop/offers").status_code == 401
        assert http.get("/shop/offers", headers=as_customer("ada")).json()["events"] == []
