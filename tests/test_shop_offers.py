"""The demo's shop backend hears of the waiting list's offers (harness/shop_offers.py): the
service's webhooks on `POST /shop/hooks`, verified and taken once each; a buyer's own offers on
`GET /shop/offers`, the buyer named by the shop's customer token."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from domain.waitlist_events import signature_header
from harness.customer_tokens import bearer, mint, new_secret
from harness.shop_front import app
from harness.shop_hooks import ShopHooks

SECRET = new_secret()
HOOKS_SECRET = "shop-hooks-secret-of-the-tests-0123456789abcdef"


@asynccontextmanager
async def client(hooks: ShopHooks | None) -> AsyncIterator[httpx.AsyncClient]:
    shop = app(SECRET, "http://service.invalid", hooks=hooks)
    async with shop.router.lifespan_context(shop):
        transport = httpx.ASGITransport(app=shop)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
            yield http


def event(number: int, kind: str, customer: str, reservation: str) -> dict[str, Any]:
    return {
        "id": f"evt_{number}",
        "type": f"waitlist.offer_{kind}",
        "created": int(time.time()),
        "data": {
            "sku": "vinyl",
            "customer_id": customer,
            "reservation_id": reservation,
            "quantity": 1,
            "expires_at": "2030-01-01T00:00:00.000Z",
        },
    }


async def deliver(
    http: httpx.AsyncClient, body: dict[str, Any], secret: str = HOOKS_SECRET
) -> httpx.Response:
    raw = json.dumps(body).encode()
    header = signature_header(secret, int(time.time()), raw)
    headers = {"Reservation-Signature": header, "Content-Type": "application/json"}
    return await http.post("/shop/hooks", content=raw, headers=headers)


async def offers(http: httpx.AsyncClient, customer: str) -> dict[str, Any]:
    answer = await http.get("/shop/offers", headers=bearer(mint(customer, SECRET)))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body: dict[str, Any] = answer.json()
    return body


async def test_offers_are_kept_per_buyer_once_each_and_lapse() -> None:
    hooks = ShopHooks(HOOKS_SECRET)
    async with client(hooks) as http:
        assert (await http.get("/shop")).json()["offers"] is True
        created = event(1, "created", "ada", "default.wl-a")
        for _ in range(2):  # a redelivery is taken once
            assert (await deliver(http, created)).status_code == 200
        assert (await deliver(http, event(2, "created", "bob", "default.wl-b"))).status_code == 200
        ada = await offers(http, "ada")
        assert ada["customer_id"] == "ada"
        assert [e["id"] for e in ada["events"]] == ["evt_1"]
        assert ada["offers"] == [
            {
                "sku": "vinyl",
                "reservation_id": "default.wl-a",
                "quantity": 1,
                "expires_at": "2030-01-01T00:00:00.000Z",
                "status": "offered",
            }
        ]
        assert [o["reservation_id"] for o in (await offers(http, "bob"))["offers"]] == [
            "default.wl-b"
        ]
        assert (await deliver(http, event(3, "lapsed", "ada", "default.wl-a"))).status_code == 200
        [lapsed] = (await offers(http, "ada"))["offers"]
        assert lapsed["status"] == "lapsed"
        assert (await offers(http, "carol")) == {"customer_id": "carol", "offers": [], "events": []}


async def test_a_delivery_that_does_not_verify_is_refused_and_nothing_is_kept() -> None:
    hooks = ShopHooks(HOOKS_SECRET)
    async with client(hooks) as http:
        forged = await deliver(http, event(1, "created", "ada", "default.wl-a"), new_secret())
        assert forged.status_code == 400
        assert forged.json() == {"error": "invalid_signature"}
        unsigned = await http.post("/shop/hooks", json=event(2, "created", "ada", "default.wl-x"))
        assert unsigned.status_code == 400
        raw = json.dumps(event(3, "created", "ada", "default.wl-y")).encode()
        stale = signature_header(HOOKS_SECRET, int(time.time()) - 3600, raw)
        old = await http.post("/shop/hooks", content=raw, headers={"Reservation-Signature": stale})
        assert old.status_code == 400
        assert (await offers(http, "ada"))["events"] == []
    assert (hooks.refused, hooks.arrived(), hooks.taken_ids()) == (3, [], [])


async def test_offers_need_the_shop_s_token() -> None:
    async with client(ShopHooks(HOOKS_SECRET)) as http:
        for headers in (
            {},
            {"Authorization": "Bearer not-a-token"},
            bearer(mint("ada", new_secret())),
            {"Authorization": f"Basic {mint('ada', SECRET)}"},
        ):
            answer = await http.get("/shop/offers", headers=headers)
            assert answer.status_code == 401, headers
            assert answer.json()["error"] == "customer_token_required"


async def test_without_a_hooks_secret_there_is_no_receiver_and_no_offers() -> None:
    async with client(None) as http:
        assert (await http.get("/shop")).json()["offers"] is False
        assert (await offers(http, "ada"))["offers"] == []
