"""Debian's headless Chromium through Playwright (executable_path: no browser is downloaded),
shared by the browser tests; and the screenshots the README shows (with SCREENSHOTS_DIR set)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

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
