"""A refund Stripe refuses for good, on /ops in a real browser (Debian's Chromium through
Playwright), against `reservation serve` and `reservation stripe-sim` as processes: a buyer pays
after their hold lapsed and the stock went, the simulator refuses the refund (a disputed charge),
and the operations page shows it: the tile, and the refund with Stripe's error."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.api import ADMIN, ADMIN_TOKEN
from tests.browser import CHROMIUM, NewBuyer
from tests.live import LiveShop

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does)",
)


def test_the_operations_page_shows_a_refused_refund(
    live_shop: LiveShop, new_buyer: NewBuyer
) -> None:
    shop = live_shop
    shop.put_product("tee-black", 5, name="Black tee", price=2500)
    with shop.http() as http:
        late = http.post("/v1/checkout", json={"items": [{"sku": "tee-black", "quantity": 4}]})
        assert late.status_code == 201, late.text
        shop.age_hold(late.json()["reservation_id"])
        crowd = http.post("/v1/checkout", json={"items": [{"sku": "tee-black", "quantity": 3}]})
        assert crowd.status_code == 201, crowd.text
        fault = {
            "path": "/v1/refunds",
            "mode": "400",
            "count": None,
            "code": "charge_disputed",
            "message": "This charge is disputed.",
        }
        assert httpx.post(f"{shop.sim_url}/_sim/faults", json=fault).status_code == 200
        # The late buyer pays at the simulator: nothing is left, and Stripe refuses the refund.
        assert httpx.post(late.json()["url"], data={"action": "pay"}).status_code == 303
        session_id = late.json()["checkout_session_id"]

        def refused() -> bool:
            answer = http.get("/v1/refunds/failed", headers=ADMIN).json()["data"]
            return [refund["checkout_session_id"] for refund in answer] == [session_id]

        shop.wait_for(refused, "the refused refund was recorded")
        order = http.get(f"/v1/orders/{session_id}", headers=ADMIN).json()
        assert order["status"] == "refund_failed"

    page = new_buyer(shop)
    page.goto("/ops")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Show the sale").click()
    expect(page.locator("#t-refunds")).to_have_text("1")
    expect(page.locator("#tile-refunds")).to_have_class("tile bad")
    row = page.locator(f'#refused tr[data-session="{session_id}"]')
    expect(row).to_contain_text("charge_disputed: This charge is disputed.")
    badge = page.locator(f'#orders tr[data-session="{session_id}"] .badge')
    expect(badge).to_have_text("refund failed")
