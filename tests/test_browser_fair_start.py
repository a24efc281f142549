"""The storefront of a fair start, in Chromium against the shop as processes (tests/live.py):
the countdown to a sale's start, which enables Buy by itself; live stock from the product's
stream of events instead of reading the products again and again, also through the demo's shop
backend (which must pass the stream on as it comes); the waiting room's line.

Every wait is on the page's own state (Playwright's expect): none races the clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from tests.api import ADMIN, ADMIN_TOKEN
from tests.browser import CHROMIUM, NewBuyer, card, hold_of, stock_of
from tests.live import LiveShop

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does)",
)

SLOW_MS = 60_000  # waits for the service to do what it does by its own clock


def at(seconds: float) -> str:
    """A time `seconds` from now, in the API's time format."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def product_reads(page: Page) -> list[str]:
    """The page's reads of products from now on (its streams not counted), as they happen."""
    reads: list[str] = []

    def note(request: Request) -> None:
        path = urlparse(request.url).path
        if path.startswith("/v1/products") and not path.endswith("/events"):
            reads.append(f"{request.method} {path}")

    page.on("request", note)
    return reads


def test_the_countdown_reaching_zero_enables_buy_without_a_reload(
    live_shop: LiveShop, new_buyer: NewBuyer
) -> None:
    shop = live_shop
    shop.put_product("drop", 3, name="Drop", sale_starts_at=at(3600))
    shop.put_product("gone", 3, name="Gone", sale_starts_at=at(-7200), sale_ends_at=at(-3600))
    page = new_buyer(shop)
    page.goto("/")
    drop = card(page, "drop")
    expect(drop.locator('[data-field="when"]')).to_have_text(
        re.compile(r"^Sale starts in (59:\d\d|1:00:00)$")
    )
    expect(drop.get_by_role("button", name="Buy")).to_be_disabled()
    expect(card(page, "gone").locator('[data-field="when"]')).to_have_text("The sale has ended.")
    expect(card(page, "gone").get_by_role("button", name="Sale ended")).to_be_disabled()

    # A start a few seconds ahead: the page counts down to it, then Buy opens by itself.
    shop.put_product("drop", 3, name="Drop", sale_starts_at=at(4))
    page.reload()
    page.evaluate("window.sameDocument = true")

    # Product reads may be up to their max-age old (Cache-Control): the page comes to count
    # down to the new start, unless the start came first on a slow machine.
    def counting_down() -> bool:
        when = drop.locator('[data-field="when"]').text_content() or ""
        return re.fullmatch(r"Sale starts in 00:0[0-5]|The sale is opening…", when) is not None

    shop.wait_for(
        lambda: counting_down() or shop.product("drop")["on_sale"],
        "the countdown to the new start, or the start",
    )
    buy = drop.get_by_role("button", name="Buy")
    expect(buy).to_be_enabled(timeout=SLOW_MS)
    expect(drop.locator('[data-field="when"]')).to_be_hidden()
    assert page.evaluate("window.sameDocument") is True  # no reload
    buy.click()
    expect(hold_of(page, "Drop")).to_contain_text("Drop")
    assert shop.product("drop")["reserved"] == 1


@pytest.mark.parametrize("front", ["live_shop", "named_live_shop"])
def test_stock_changed_elsewhere_reaches_the_page_by_its_stream(
    front: str, request: pytest.FixtureRequest, new_buyer: NewBuyer
) -> None:
    """Another buyer's hold moves the page's number, through the product's stream: the page
    reads no product meanwhile. Through the demo's shop backend too (named_live_shop), which
    must pass the stream on as it comes."""
    shop: LiveShop = request.getfixturevalue(front)
    shop.put_product("tee", 10, name="Tee")
    shop.put_product("cap", 4, name="Cap")
    page = new_buyer(shop)
    with page.expect_request(lambda request: request.url.endswith("/v1/products/cap/events")):
        page.goto("/")
    expect(stock_of(page, "cap")).to_have_text("4 of 4 left")
    expect(stock_of(page, "tee")).to_have_text("10 of 10 left")
    reads = product_reads(page)
    with shop.http() as http:
        held = http.post("/v1/reservations", json={"items": [{"sku": "cap", "quantity": 3}]})
        assert held.status_code == 201, held.text
        expect(stock_of(page, "cap")).to_have_text("1 of 4 left")
        given_back = http.delete(f"/v1/reservations/{held.json()['id']}")
        assert given_back.status_code == 200, given_back.text
        expect(stock_of(page, "cap")).to_have_text("4 of 4 left")
        sold_out = http.post("/v1/reservations", json={"items": [{"sku": "cap", "quantity": 4}]})
        assert sold_out.status_code == 201, sold_out.text
    expect(stock_of(page, "cap")).to_have_text("Sold out")
    expect(card(page, "cap").get_by_role("button", name="Sold out")).to_be_disabled()
    expect(stock_of(page, "tee")).to_have_text("10 of 10 left")
    assert reads == []


def test_the_line_gives_a_place_then_a_turn_that_makes_one_hold(
    live_shop: LiveShop, new_buyer: NewBuyer
) -> None:
    """A drop with a waiting room: Join the line, a place kept across a reload, then the turn
    and a Buy that sends the admission token; one hold a turn. /ops shows the line."""
    shop = live_shop
    room = {"admit_per_second": 50, "max_active": 1, "admission_seconds": 120}
    shop.put_product("drop", 5, name="Drop", waiting_room=room)
    shop.put_product("later", 5, name="Later", waiting_room=room, sale_starts_at=at(3600))
    with shop.http() as http:
        first = http.post("/v1/queue/drop", json={"customer_id": "cus-first"}).json()
        second = http.post("/v1/queue/drop", json={"customer_id": "cus-second"}).json()
    assert (first["status"], second["status"], second["position"]) == ("admitted", "waiting", 1)

    page = new_buyer(shop)
    page.goto("/")
    drop, line = card(page, "drop"), card(page, "drop").locator('[data-field="line"]')
    drop.get_by_role("button", name="Join the line").click()
    expect(line).to_have_text(re.compile(r"^You are number 2 in the line \(about \d+ s to wait\)"))
    expect(drop.get_by_role("button", name="In line")).to_be_disabled()
    page.reload()  # the place is kept
    expect(line).to_have_text(re.compile(r"^You are number 2 in the line"))
    # Before the start, the line is open and says how places are given.
    later = card(page, "later")
    expect(later.locator('[data-field="when"]')).to_have_text(re.compile(r"^Sale starts in"))
    later.get_by_role("button", name="Join the line").click()
    expect(later.locator('[data-field="line"]')).to_contain_text("one random draw")

    # The two ahead use their turns; then it is this buyer's.
    with shop.http() as http:
        for customer, ticket in (("cus-first", first), ("cus-second", second)):

            def admitted(ticket: dict[str, str] = ticket) -> bool:
                answer = http.get(f"/v1/queue/drop/{ticket['ticket']}").json()
                ticket.update(answer)
                return bool(answer["status"] == "admitted")

            shop.wait_for(admitted, f"{customer} was admitted")
            body = {
                "items": [{"sku": "drop", "quantity": 1}],
                "customer_id": customer,
                "admission_token": ticket["admission_token"],
            }
            assert http.post("/v1/reservations", json=body).status_code == 201
    expect(line).to_have_text(re.compile(r"^It's your turn: buy within \d+:\d\d\.$"))
    drop.get_by_role("button", name="Buy").click()
    expect(hold_of(page, "Drop")).to_contain_text("Drop")
    expect(line).to_have_text("Your turn made a hold: pay for it above.")
    expect(drop.get_by_role("button", name="Turn used")).to_be_disabled()
    with shop.http() as http:
        state = http.get("/v1/queue/drop", headers=ADMIN).json()
    assert (state["waiting"], state["admitted"], state["used"]) == (0, 3, 3)
    assert shop.product("drop")["reserved"] == 3

    page.goto("/ops")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Show the sale").click()
    row = page.locator('#lines tr[data-sku="drop"]')
    for field, value in (("waiting", "0"), ("active", "0"), ("admitted", "3"), ("used", "3")):
        expect(row.locator(f'[data-field="{field}"]')).to_have_text(value)
    expect(page.locator('#lines tr[data-sku="later"] [data-field="started"]')).to_have_text(
        "not yet"
    )
    expect(page.locator('#lines tr[data-sku="later"] [data-field="waiting"]')).to_have_text("1")


def test_a_turn_that_passes_says_so_and_offers_the_line_again(
    live_shop: LiveShop, new_buyer: NewBuyer
) -> None:
    """A turn of one second, let pass: the card says so and offers to join again; the service
    gives that buyer a new ticket at the end of the line, which gets a turn of its own."""
    shop = live_shop
    room = {"admit_per_second": 50, "max_active": 1, "admission_seconds": 1}
    shop.put_product("drop", 5, name="Drop", waiting_room=room)
    page = new_buyer(shop)
    page.goto("/")
    drop, line = card(page, "drop"), card(page, "drop").locator('[data-field="line"]')
    drop.get_by_role("button", name="Join the line").click()
    expect(line).to_have_text("Your turn passed: join the line again.")
    admitted = admissions(shop, "drop")
    assert len(admitted) == 1
    drop.get_by_role("button", name="Join the line again").click()
    shop.wait_for(lambda: len(admissions(shop, "drop")) == 2, "a second turn, on a new ticket")
    assert admissions(shop, "drop")[1]["ticket"] != admitted[0]["ticket"]
    assert shop.product("drop")["reserved"] == 0


def admissions(shop: LiveShop, sku: str) -> list[dict[str, Any]]:
    """The room's admissions log, as its operators read it (admin GET /v1/queue/{sku})."""
    answer = httpx.get(f"{shop.url}/v1/queue/{sku}", headers=ADMIN, timeout=10)
    answer.raise_for_status()
    log: list[dict[str, Any]] = answer.json()["admissions"]
    return log
