"""Debian's headless Chromium through Playwright (executable_path: no browser is downloaded),
shared by the browser tests: the browser, a buyer's page (fixtures), the storefront's parts; and
the screenshots the README shows (with SCREENSHOTS_DIR set)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.live import LiveShop

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("SCREENSHOTS_DIR")
WAIT_MS = 15_000


@contextmanager
def chromium() -> Iterator[Browser]:
    # Every wait as patient as an action's (the contexts' default timeout): expect's own
    # default, 5 s, is short for a page on a busy machine.
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


NewBuyer = Callable[[LiveShop], Page]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def new_buyer(browser: Browser) -> Iterator[NewBuyer]:
    """A browser context of its own per buyer (its own storage: its own customer id); no
    page may throw a JavaScript error."""
    contexts = []
    errors: list[str] = []

    def make(shop: LiveShop) -> Page:
        context = browser.new_context(
            base_url=shop.url,
            viewport={"width": 1200, "height": 800},
            locale="en-US",
            timezone_id="UTC",
        )
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert errors == []


def card(page: Page, sku: str) -> Locator:
    return page.locator(f'li.product[data-sku="{sku}"]')


def stock_of(page: Page, sku: str) -> Locator:
    return card(page, sku).locator('[data-field="stock"]')


def hold_of(page: Page, name: str) -> Locator:
    return page.locator(".hold").filter(has_text=name)


def wait_until(page: Page, done: Callable[[], bool], what: str) -> None:
    """Wait (at most as long as an action) until `done()`, letting the page's events (routes,
    requests) be handled meanwhile."""
    for _ in range(WAIT_MS // 25):
        if done():
            return
        page.wait_for_timeout(25)
    assert done(), f"gave up waiting for {what}"
