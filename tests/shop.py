"""The app wired to the Stripe simulator: checkout, signed webhook delivery, inspection."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from stripesim import encode_event
from tests.api import Api, MakeApi
from tests.stripe_fake import API_KEY, SESSION_SECRET, MakeStripeSim, StripeSim, signed

WEBHOOK_SECRET = "whsec_test_secret"


class Shop:
    """One app and the simulator it pays through."""

    def __init__(self, api: Api, sim: StripeSim) -> None:
        self.api = api
        self.sim = sim
        # body -> the last timestamp it was signed with (see `deliver`)
        self._signed_at: dict[bytes, int] = {}

    @property
    def http(self) -> httpx.AsyncClient:
        return self.api.http

    async def checkout(self, *items: tuple[str, int], **fields: Any) -> httpx.Response:
        body: dict[str, Any] = dict(fields)
        if items:
            body["items"] = [{"sku": sku, "quantity": quantity} for sku, quantity in items]
        return await self.http.post("/v1/checkout", json=body)

    async def deliver(
        self, event: dict[str, Any], secret: str = WEBHOOK_SECRET, timestamp: int | None = None
    ) -> httpx.Response:
        """Deliver `event` as Stripe delivers each attempt: signed afresh. Stripe's timestamp
        is the second it signs at; here every delivery of one body gets a later one than the
        last (up to a few seconds ahead, well within the tolerance), so the service sees a
        new delivery, never a replay of the same bytes."""
        if timestamp is None:
            body = encode_event(event)
            timestamp = max(int(time.time()), self._signed_at.get(body, 0) + 1)
            self._signed_at[body] = timestamp
        body, headers = signed(event, secret, timestamp)
        return await self.post_signed(body, headers)

    async def post_signed(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST these exact bytes and headers (a replay, when they were delivered before)."""
        return await self.http.post("/v1/webhooks/stripe", content=body, headers=headers)

    async def product(self, sku: str) -> dict[str, Any]:
        found: dict[str, Any] = (await self.http.get(f"/v1/products/{sku}")).json()
        return found

    async def reservation(self, reservation_id: str) -> dict[str, Any]:
        found: dict[str, Any] = (await self.http.get(f"/v1/reservations/{reservation_id}")).json()
        return found

    async def stored_events(self) -> int:
        return await self.api.services.db["stripe_events"].count_documents({})


MakeShop = Callable[..., Awaitable[Shop]]


@pytest.fixture
def make_shop(make_api: MakeApi, make_stripe_sim: MakeStripeSim) -> MakeShop:
    async def make(sim: StripeSim | None = None, **settings: Any) -> Shop:
        sim = sim or make_stripe_sim()
        options: dict[str, Any] = {
            "stripe_secret_key": API_KEY,
            "session_secrets": (SESSION_SECRET,),
            "stripe_api_base": sim.url,
            "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_timeout_seconds": 4.0,
        }
        options.update(settings)
        return Shop(await make_api(**options), sim)

    return make


@pytest.fixture
async def shop(make_shop: MakeShop) -> Shop:
    shop = await make_shop()
    assert (await shop.api.put_product("tee", 5, price=2500, currency="eur")).status_code == 200
    assert (await shop.api.put_product("cap", 3, price=1200, currency="eur")).status_code == 200
    return shop
