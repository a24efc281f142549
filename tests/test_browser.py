"""The storefront and the operations page in a real browser: Debian's headless Chromium driven
by Playwright (executable_path: no browser is downloaded), against `reservation serve` and
`reservation stripe-sim` running as processes (tests/live.py).

With SCREENSHOTS_DIR set (`SCREENSHOTS_DIR=docs/screenshots pytest tests/test_browser.py`) the
tests also save the pictures the README shows: the storefront, the success page and /ops.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest
from playwright.sync_api import Browser, Page, Request, Route, expect

from harness.customer_tokens import bearer, mint
from tests.api import ADMIN, ADMIN_TOKEN
from tests.browser import CHROMIUM, NewBuyer, card, hold_of, screenshot, stock_of, wait_until
from tests.live import CUSTOMER_TOKEN_SECRET, LiveShop, MakeLiveShop
from tests.stripe_fake import API_KEY

TIMES = "\N{MULTIPLICATION SIGN}"  # as in "1 TIMES Black tee"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does)",
)


def go_pay(page: Page, shop: LiveShop, name: str) -> str:
    """Pay for the hold of `name`: on to the simulator's page; its session id."""
    hold_of(page, name).get_by_role("button", name="Pay").click()
    page.wait_for_url(f"{shop.sim_url}/pay/*")
    return page.url.rsplit("/", 1)[1]


def session_of(page: Page) -> str:
    return parse_qs(urlparse(page.url).query)["session_id"][0]


def test_a_purchase_ends_on_the_success_page_with_a_paid_order(
    live_shop: LiveShop, new_buyer: NewBuyer
) -> None:
    shop = live_shop
    shop.put_product("tee-black", 25, name="Black tee", price=2500)
    shop.put_product("sneaker-drop", 3, name="Sneaker drop", price=12900, max_per_customer=1)
    shop.put_product("poster-signed", 0, name="Signed poster", price=4000)
    shop.put_product("yen-mug", 40, name="Mug (Tokyo store)", price=1800, currency="jpy")
    page = new_buyer(shop)
    page.goto("/")
    expect(stock_of(page, "sneaker-drop")).to_have_text("3 of 3 left")
    expect(stock_of(page, "poster-signed")).to_have_text("Sold out")
    expect(card(page, "poster-signed").get_by_role("button", name="Sold out")).to_be_disabled()
    expect(card(page, "tee-black").locator(".price")).to_have_text("€25.00")
    expect(card(page, "yen-mug").locator(".price")).to_have_text("¥1,800")
    expect(card(page, "sneaker-drop").locator(".limit")).to_have_text("At most 1 per customer")

    card(page, "sneaker-drop").get_by_role("button", name="Buy").click()
    hold = hold_of(page, "Sneaker drop")
    expect(hold).to_contain_text(f"1 {TIMES} Sneaker drop")
    expect(hold.get_by_role("timer")).to_have_text(re.compile(r"^\d+:\d\d$"))
    expect(hold.get_by_role("button", name="Pay")).to_be_focused()
    expect(stock_of(page, "sneaker-drop")).to_have_text("2 of 3 left, 1 held in carts")
    assert shop.product("sneaker-drop")["reserved"] == 1
    screenshot(page, "storefront.png")

    go_pay(page, shop, "Sneaker drop")
    expect(page.get_by_role("cell", name="Sneaker drop")).to_be_visible()
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_url(f"{shop.url}/checkout/success?session_id=*")
    expect(page.locator("main")).to_have_attribute("data-status", "paid")
    expect(page.get_by_role("heading", level=1)).to_have_text("Paid: thank you!")
    expect(page.locator("#lines")).to_have_text(f"1 {TIMES} Sneaker drop")
    expect(page.locator("#total")).to_have_text("Total: €129.00")
    screenshot(page, "success.png")

    [order] = shop.stored_orders()
    assert order["checkout_session_id"] == session_of(page)
    assert order["status"] == "paid"
    assert [(line["sku"], line["quantity"]) for line in order["items"]] == [("sneaker-drop", 1)]
    assert order["amount_total"] == 12900
    page.get_by_role("link", name="Back to the shop").click()
    expect(stock_of(page, "sneaker-drop")).to_have_text("2 of 3 left")
    expect(page.locator("#holds")).to_be_hidden()
    product = shop.product("sneaker-drop")
    assert (product["sold"], product["reserved"], product["available"]) == (1, 0, 2)


def test_a_named_buyer_holds_and_pays_with_the_shop_s_token(
    named_live_shop: LiveShop, new_buyer: NewBuyer
) -> None:
    """Behind the demo's shop backend the storefront asks for a name once, gets a customer
    token for it, and sends it with the hold, the checkout and the reads of the hold."""
    shop = named_live_shop
    shop.put_product("tee", 3, name="Tee", max_per_customer=1)
    page = new_buyer(shop)
    sent: dict[str, str | None] = {}  # "POST /v1/checkout" -> its Authorization

    def note(request: Request) -> None:
        path = urlparse(request.url).path
        sent[f"{request.method} {path.rsplit('/', 1)[0] if path.count('/') > 2 else path}"] = (
            request.headers.get("authorization")
        )

    page.on("request", note)
    page.goto("/")
    expect(page.get_by_role("heading", name="Who is buying?")).to_be_visible()
    card(page, "tee").get_by_role("button", name="Buy").click()
    expect(card(page, "tee").locator(".message")).to_contain_text("Type your name above first")
    assert shop.product("tee")["reserved"] == 0
    page.get_by_label("Your name").fill("Grace Hopper")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#who-shown")).to_have_text("Grace Hopper")
    card(page, "tee").get_by_role("button", name="Buy").click()
    expect(hold_of(page, "Tee")).to_contain_text(f"1 {TIMES} Tee")
    reservation_id = hold_of(page, "Tee").get_attribute("data-reservation")
    token = mint("grace-hopper", CUSTOMER_TOKEN_SECRET)
    with shop.http() as http:
        held = http.get(f"/v1/reservations/{reservation_id}", headers=bearer(token))
    assert held.status_code == 200, held.text
    assert held.json()["customer_id"] == "grace-hopper"
    with page.expect_request(lambda r: r.method == "GET" and "/v1/reservations/" in r.url):
        # The storefront reads its hold again within two seconds.
        expect(hold_of(page, "Tee").get_by_role("timer")).to_have_text(re.compile(r"^\d+:\d\d$"))

    go_pay(page, shop, "Tee")
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.locator("main")).to_have_attribute("data-status", "paid")
    stored = page.evaluate("JSON.parse(localStorage.getItem('shop.buyer'))")
    bearing = f"Bearer {stored['token']}"
    assert sent["POST /v1/reservations"] == bearing
    assert sent["POST /v1/checkout"] == bearing
    assert sent["GET /v1/reservations"] == bearing  # the storefront's reads of its hold
    assert (
        jwt.decode(
            stored["token"], CUSTOMER_TOKEN_SECRET, algorithms=["HS256"], audience="reservation"
        )["sub"]
        == "grace-hopper"
    )
    [order] = shop.stored_orders()
    assert order["status"] == "paid"

    page.get_by_role("link", name="Back to the shop").click()
    page.get_by_role("button", name="Not you?").click()
    expect(page.get_by_label("Your name")).to_be_focused()


def test_two_buyers_race_for_the_last_unit(live_shop: LiveShop, new_buyer: NewBuyer) -> None:
    shop = live_shop
    shop.put_product("last-one", 1, name="Last one")
    pages = [new_buyer(shop), new_buyer(shop)]
    for page in pages:
        page.goto("/")
        expect(stock_of(page, "last-one")).to_have_text("1 of 1 left")
    # Both press Buy at once. Each page's hold request is kept in the browser until both have
    # been sent, then both go: the first to arrive could otherwise be answered, and streamed as
    # sold out to the other page, before the other page's submit ran (its Buy already gone).
    sent: list[Route] = []

    def keep(route: Route) -> None:
        if route.request.method == "POST":
            sent.append(route)
        else:
            route.continue_()

    for page in pages:
        page.route("**/v1/reservations", keep)
    for page in pages:
        page.evaluate("""document.querySelector('li[data-sku="last-one"] form').requestSubmit()""")
    wait_until(pages[0], lambda: len(sent) == len(pages), "both pages to send their hold")
    for route in sent:
        route.continue_()
    for page in pages:
        expect(card(page, "last-one").locator(".message")).to_have_text(
            re.compile("Held for you|Sold out")
        )
    winners = [page for page in pages if hold_of(page, "Last one").count() == 1]
    losers = [page for page in pages if page not in winners]
    assert (len(winners), len(losers)) == (1, 1)
    [winner], [loser] = winners, losers
    expect(card(loser, "last-one").locator(".message")).to_have_text(
        "Sold out: someone was faster."
    )
    sold_out = card(loser, "last-one").get_by_role("button", name="Sold out")
    expect(sold_out).to_be_disabled()
    # Units that come back go to the waiting list first: the loser may join it.
    expect(
        card(loser, "last-one").get_by_role("button", name="Join the waiting list")
    ).to_be_enabled()

    go_pay(winner, shop, "Last one")
    winner.get_by_role("button", name="Pay", exact=True).click()
    expect(winner.locator("main")).to_have_attribute("data-status", "paid")
    # The loser's page follows `available` live (0 throughout); that the held unit was paid
    # for, not given back, it reads with the products on its next load.
    loser.reload()
    expect(stock_of(loser, "last-one")).to_have_text("Sold out")
    orders = shop.stored_orders()
    assert [(order["status"], order["checkout_session_id"]) for order in orders] == [
        ("paid", session_of(winner))
    ]
    product = shop.product("last-one")
    assert (product["sold"], product["reserved"], product["available"]) == (1, 0, 0)


def test_a_buyer_at_the_hold_cap_is_told_to_pay_or_give_one_back(
    make_live_shop: MakeLiveShop, new_buyer: NewBuyer
) -> None:
    shop = make_live_shop(RESERVATION_MAX_HOLDS_PER_CUSTOMER="2")
    shop.put_product("tee", 10, name="Tee")
    page = new_buyer(shop)
    page.goto("/")
    buy = card(page, "tee").get_by_role("button", name="Buy")
    for held in (1, 2):
        buy.click()
        expect(page.locator(".hold")).to_have_count(held)
    buy.click()
    expect(card(page, "tee").locator(".message")).to_have_text(
        "You hold as many carts as a customer may (2): pay for or give back one first."
    )
    assert shop.product("tee")["reserved"] == 2
    page.locator(".hold").first.get_by_role("button", name="Give back").click()
    expect(stock_of(page, "tee")).to_have_text("9 of 10 left, 1 held in carts")
    buy.click()
    expect(card(page, "tee").locator(".message")).to_have_text(
        "Held for you: pay above before the time runs out."
    )
    assert shop.product("tee")["reserved"] == 2


def test_a_declined_card_keeps_the_hold_until_it_lapses(
    make_live_shop: MakeLiveShop, new_buyer: NewBuyer
) -> None:
    # The hold keeps its default ten minutes, and the test makes them pass: in the page (its
    # clock, which Playwright drives) and in Redis (LiveShop.age_hold). A 15-second hold on the
    # wall clock had to outlast the whole decline flow, which a busy machine may not finish.
    shop = make_live_shop(RESERVATION_SWEEP_SECONDS="1")
    shop.put_product("tee", 1, name="Tee")
    page = new_buyer(shop)
    page.clock.install()  # runs with the wall clock until the test moves it
    page.goto("/")
    card(page, "tee").get_by_role("button", name="Buy").click()
    reservation_id = hold_of(page, "Tee").get_attribute("data-reservation")
    assert reservation_id
    session_id = go_pay(page, shop, "Tee")
    page.get_by_role("button", name="Decline").click()
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined")
    expect(page.get_by_role("button", name="Pay", exact=True)).to_be_enabled()  # try again
    product = shop.product("tee")
    assert (product["reserved"], product["available"]) == (1, 0)  # the hold stays

    page.goto("/")
    expect(hold_of(page, "Tee").get_by_role("timer")).to_have_text(re.compile(r"^\d+:\d\d$"))
    expect(stock_of(page, "tee")).to_have_text("Sold out (1 held in carts may come back)")
    # Then its time passes, and it lapses by itself: the page, its clock a second past the
    # hold's end (and stopped there, so the line stays to be read), says so at once; Redis,
    # its hold aged, gives the unit back, on sale again.
    with shop.http() as http:
        expires_at = http.get(f"/v1/reservations/{reservation_id}").json()["expires_at"]
    # Meanwhile the page hears nothing from the service: it sets its clock by the answers'
    # Date headers (the service's clock), so an answer landing between the jump and the page's
    # next tick would set it back before the page saw the hold's end.
    page.route("**/v1/**", lambda route: route.abort())
    page.clock.pause_at(datetime.fromisoformat(expires_at) + timedelta(seconds=1))
    expect(hold_of(page, "Tee")).to_contain_text("the hold lapsed")
    page.unroute("**/v1/**")
    shop.age_hold(reservation_id)
    page.clock.resume()
    expect(stock_of(page, "tee")).to_have_text("1 of 1 left")
    product = shop.product("tee")
    assert (product["reserved"], product["sold"], product["available"]) == (0, 0, 1)
    assert shop.stored_orders() == []

    # The sweeper expires the lapsed hold's session: nobody can pay for a unit that went back.
    def session_status() -> str:
        answer = httpx.get(
            f"{shop.sim_url}/v1/checkout/sessions/{session_id}",
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        status: str = answer.json()["status"]
        return status

    shop.wait_for(lambda: session_status() == "expired", "the sweeper expired the session")


def test_cancel_gives_the_unit_back_at_once(live_shop: LiveShop, new_buyer: NewBuyer) -> None:
    shop = live_shop
    shop.put_product("cap", 1, name="Cap")
    page = new_buyer(shop)
    page.goto("/")
    card(page, "cap").get_by_role("button", name="Buy").click()
    expect(hold_of(page, "Cap")).to_be_visible()
    assert shop.product("cap")["available"] == 0
    go_pay(page, shop, "Cap")
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(f"{shop.url}/checkout/cancel?reservation_id=*")
    expect(page.locator("main")).to_have_attribute("data-status", "released")
    expect(page.get_by_role("status")).to_have_text(
        "Nothing was charged, and the units went back on sale."
    )
    product = shop.product("cap")  # at once: the hold lasts ten minutes
    assert (product["reserved"], product["available"]) == (0, 1)
    page.get_by_role("link", name="Back to the shop").click()
    expect(stock_of(page, "cap")).to_have_text("1 of 1 left")
    expect(page.locator("#holds")).to_be_hidden()


def test_the_storefront_fits_a_phone_and_works_from_the_keyboard(
    live_shop: LiveShop, browser: Browser
) -> None:
    shop = live_shop
    shop.put_product("tee-black", 5, name="Black tee with a rather long name for a phone")
    shop.put_product("cap", 2, name="Cap")
    context = browser.new_context(
        base_url=shop.url, viewport={"width": 360, "height": 740}, is_mobile=True, locale="en-US"
    )
    try:
        page = context.new_page()
        page.goto("/")
        expect(page.get_by_label("Quantity")).to_have_count(2)  # every control is labelled
        expect(stock_of(page, "cap")).to_have_text("2 of 2 left")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360  # nothing wider than the screen
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to the products")).to_be_focused()
        card(page, "cap").get_by_label("Quantity").focus()
        page.keyboard.press("ArrowDown")  # 2 units
        page.keyboard.press("Tab")
        expect(card(page, "cap").get_by_role("button", name="Buy")).to_be_focused()
        page.keyboard.press("Enter")
        hold = hold_of(page, "Cap")
        expect(hold).to_contain_text(f"2 {TIMES} Cap")
        expect(hold.get_by_role("button", name="Pay")).to_be_focused()
        page.keyboard.press("Tab")
        expect(hold.get_by_role("button", name="Give back")).to_be_focused()
        page.keyboard.press("Enter")
        expect(hold).to_contain_text("given back")
        expect(stock_of(page, "cap")).to_have_text("2 of 2 left")
    finally:
        context.close()


def test_a_checkout_stripe_cannot_make_says_so_and_gives_the_unit_back(
    make_live_shop: MakeLiveShop, new_buyer: NewBuyer
) -> None:
    shop = make_live_shop(STRIPE_TIMEOUT_SECONDS="1")
    shop.put_product("cap", 1, name="Cap")
    fault = {"path": "/v1/checkout/sessions", "method": "POST", "mode": "500", "count": None}
    assert httpx.post(f"{shop.sim_url}/_sim/faults", json=fault).status_code == 200
    page = new_buyer(shop)
    page.goto("/")
    card(page, "cap").get_by_role("button", name="Buy").click()
    hold_of(page, "Cap").get_by_role("button", name="Pay").click()
    expect(hold_of(page, "Cap")).to_contain_text(
        re.compile(r"checkout failed \(the payment provider is unavailable.*\), so the units went")
    )
    expect(stock_of(page, "cap")).to_have_text("1 of 1 left")
    assert shop.product("cap")["available"] == 1
    assert page.url == f"{shop.url}/"  # the buyer stayed in the shop


def _sell(shop: LiveShop, http: httpx.Client, sku: str, quantity: int, payment: str) -> str:
    """A checkout of `sku`, then the buyer's action at the simulator: pay, pay later, decline."""
    answer = http.post("/v1/checkout", json={"items": [{"sku": sku, "quantity": quantity}]})
    assert answer.status_code == 201, answer.text
    session_id: str = answer.json()["checkout_session_id"]
    action = {"paid": "pay", "unpaid": "pay_later", "declined": "decline"}[payment]
    assert httpx.post(answer.json()["url"], data={"action": action}).status_code == 303
    return session_id


def test_the_operations_page_shows_the_sale_as_the_api_does(
    live_shop: LiveShop, new_buyer: NewBuyer
) -> None:
    shop = live_shop
    shop.put_product("tee-black", 25, name="Black tee", price=2500)
    shop.put_product("sneaker-drop", 3, name="Sneaker drop", price=12900, max_per_customer=1)
    shop.put_product("sticker-pack", 100, name="Sticker pack", price=500)
    with shop.http() as http:
        for _ in range(4):
            _sell(shop, http, "tee-black", 2, "paid")
        _sell(shop, http, "sneaker-drop", 1, "paid")
        _sell(shop, http, "sticker-pack", 3, "unpaid")
        _sell(shop, http, "tee-black", 1, "declined")
        for sku in ("sneaker-drop", "sticker-pack"):
            held = http.post("/v1/reservations", json={"items": [{"sku": sku, "quantity": 1}]})
            assert held.status_code == 201
        shop.wait_for(
            lambda: len(http.get("/v1/orders", headers=ADMIN).json()["data"]) == 6,
            "the webhooks made six orders",
        )
        summary = http.get("/v1/ops/summary", headers=ADMIN).json()
        products = http.get("/v1/products").json()["data"]
        orders = http.get("/v1/orders", headers=ADMIN).json()["data"]

    page = new_buyer(shop)
    page.goto("/ops")
    page.get_by_label("Admin token").fill("wrong")
    page.get_by_role("button", name="Show the sale").click()
    expect(page.locator("#login-error")).to_have_text("That token was refused.")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Show the sale").click()
    for product in products:
        row = page.locator(f'#stock tr[data-sku="{product["sku"]}"]')
        for field, key in (("total", "stock"), ("held", "reserved"), ("sold", "sold")):
            expect(row.locator(f'[data-field="{field}"]')).to_have_text(str(product[key]))
        expect(row.locator('[data-field="available"]')).to_have_text(str(product["available"]))
    paid = sum(1 for order in orders if order["status"] == "paid")
    expect(page.locator("#t-paid")).to_have_text(str(paid))
    expect(page.locator("#t-sold")).to_have_text(str(sum(p["sold"] for p in products)))
    expect(page.locator("#t-held")).to_have_text(str(sum(p["reserved"] for p in products)))
    for order in orders:
        badge = page.locator(f'#orders tr[data-session="{order["checkout_session_id"]}"] .badge')
        expect(badge).to_have_text(order["status"].replace("_", " "))
    # Stripe's deliveries may still land after the six orders (a failed payment's events): the
    # page shows a count at least the one read before it, and at most the one read after.
    received = page.locator('#webhooks [data-field="received"]')
    expect(received).to_have_text(re.compile(r"^\d+$"))
    shown = int(received.inner_text())
    with shop.http() as http:
        after = http.get("/v1/ops/summary", headers=ADMIN).json()["webhooks"]["received"]
    assert summary["webhooks"]["received"] <= shown <= after
    expect(page.locator('#webhooks [data-field="failing"]')).to_have_text("0")
    expect(page.locator("#lapsing tbody tr")).to_have_count(summary["holds"]["live"])
    expect(page.locator("#chart svg polyline")).to_have_count(2)
    expect(page.locator("#chart-summary")).to_contain_text("Last minute: 9 holds, 5 sales.")
    screenshot(page, "operations.png")

    page.reload()  # the token stays for this tab
    expect(page.locator("#stock tbody tr")).to_have_count(3)
    page.get_by_role("button", name="Forget the token").click()
    expect(page.get_by_label("Admin token")).to_be_visible()
