"""Waiting rooms (issue 25, section 2) through the HTTP API: the product setting, joining,
polling, the reserve's and the checkout's admission gate, every error and bad input, verified
customers, the admin view, reconcile and the self-rebuild. The core on every backend is
tests/test_waiting_room.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reservation.operations.reconcile import reconcile
from tests.api import ADMIN, JSON, Api, MakeApi
from tests.shop import Shop
from tests.tokens import ISSUER, SECRET, bearer, mint

ROOM = {"admit_per_second": 1000, "max_active": 100, "admission_seconds": 600}
# One admission at a time, an hour long: the rest of a line keeps waiting whatever the pace.
ONE = {"admit_per_second": 1, "max_active": 1, "admission_seconds": 3600}


async def join(api: Api, sku: str = "tee", **body: Any) -> httpx.Response:
    return await api.http.post(f"/v1/queue/{sku}", json=body)


async def admitted(api: Api, customer: str | None = None, sku: str = "tee") -> str:
    """The buyer's admission token: joined, then polled until admitted (a room that admits a
    thousand a second refills its bucket within a millisecond: a join in the same millisecond
    as the last admission waits for one poll or two)."""
    answer = await join(api, sku, **({} if customer is None else {"customer_id": customer}))
    assert answer.status_code == 201, answer.text
    ticket = answer.json()
    while ticket["status"] == "waiting":
        ticket = (await api.http.get(f"/v1/queue/{sku}/{ticket['ticket']}")).json()
    assert ticket["status"] == "admitted", ticket
    token: str = ticket["admission_token"]
    return token


async def room(api: Api, sku: str = "tee") -> dict[str, Any]:
    answer = await api.http.get(f"/v1/queue/{sku}", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


# -- the product's setting -----------------------------------------------------------------------


async def test_the_room_is_a_product_setting_every_view_shows(api: Api) -> None:
    put = await api.put_product("tee", 5, waiting_room={"admit_per_second": 2, "max_active": 3})
    assert put.status_code == 200, put.text
    shown = {"admit_per_second": 2, "max_active": 3, "admission_seconds": 120}
    assert put.json()["waiting_room"] == shown
    assert (await api.http.get("/v1/products/tee")).json() == put.json()
    assert (await api.http.get("/v1/products")).json()["data"] == [put.json()]
    stored = await api.services.products.get("tee")
    assert stored is not None
    assert stored.waiting_room is not None
    assert stored.waiting_room.admission_seconds == 120
    # Omitted (or null): no room, and a reserve needs no token.
    assert (await api.put_product("tee", 5)).json()["waiting_room"] is None
    assert (await api.reserve(("tee", 1))).status_code == 201
    assert (await join(api)).json()["error"] == "no_waiting_room"


@pytest.mark.parametrize(
    "waiting_room",
    [
        {"admit_per_second": 0, "max_active": 1},
        {"admit_per_second": 1, "max_active": 0},
        {"admit_per_second": 1, "max_active": 1, "admission_seconds": 0},
        {"admit_per_second": -1, "max_active": 1},
        {"admit_per_second": 1.5, "max_active": 1},
        {"admit_per_second": "1", "max_active": 1},
        {"admit_per_second": True, "max_active": 1},
        {"admit_per_second": 1},
        {"admit_per_second": 1, "max_active": 1, "per_second": 1},
        {"admit_per_second": 100_001, "max_active": 1},
        {"admit_per_second": 1, "max_active": 1, "admission_seconds": 86_401},
        [],
        5,
    ],
)
async def test_a_bad_room_is_a_4xx_and_changes_nothing(api: Api, waiting_room: Any) -> None:
    assert (await api.put_product("tee", 5, waiting_room=ROOM)).status_code == 200
    before = (await api.http.get("/v1/products/tee")).json()
    answer = await api.put_product("tee", 7, waiting_room=waiting_room)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_request"
    assert (await api.http.get("/v1/products/tee")).json() == before
    product = await api.services.products.get("tee")
    assert product is not None
    assert product.stock == 5
    assert product.waiting_room is not None
    assert product.waiting_room.admit_per_second == ROOM["admit_per_second"]


# -- join, poll, hold ------------------------------------------------------------------------------


async def test_join_poll_and_hold_with_the_admission(api: Api) -> None:
    assert (await api.put_product("tee", 5, waiting_room=ONE)).status_code == 200
    first = await join(api, customer_id="ann")
    assert first.status_code == 201, first.text
    assert first.headers["cache-control"] == "no-store"
    ann = first.json()
    assert set(ann) == {
        *("ticket", "status", "position", "estimated_wait_seconds", "poll_after_ms"),
        *("admission_token", "admission_expires_at"),
    }
    assert (ann["status"], ann["position"], ann["estimated_wait_seconds"]) == ("admitted", 0, 0)
    assert ann["admission_token"].startswith("tee.")
    assert ann["admission_expires_at"].endswith("Z")
    again = await join(api, customer_id="ann")
    assert (again.status_code, again.json()) == (200, ann)

    bob = (await join(api, customer_id="bob")).json()
    assert set(bob) == {"ticket", "status", "position", "estimated_wait_seconds", "poll_after_ms"}
    assert (bob["status"], bob["position"], bob["estimated_wait_seconds"]) == ("waiting", 1, 1)
    assert bob["poll_after_ms"] == 1000
    polled = await api.http.get(f"/v1/queue/tee/{bob['ticket']}")
    assert polled.status_code == 200, polled.text
    assert polled.json()["ticket"] == bob["ticket"]
    assert polled.json()["status"] == "waiting"  # ann's admission is live: max_active 1

    token = ann["admission_token"]
    required = await api.reserve(("tee", 1), customer_id="ann")
    assert (required.status_code, required.json()["error"]) == (403, "admission_required")
    assert required.json()["details"] == {"sku": "tee"}
    invalid = await api.reserve(("tee", 1), customer_id="bob", admission_token=token)
    assert (invalid.status_code, invalid.json()["error"]) == (403, "admission_invalid")
    held = await api.reserve(("tee", 2), customer_id="ann", admission_token=token)
    assert held.status_code == 201, held.text
    used = await api.reserve(("tee", 1), customer_id="ann", admission_token=token)
    assert (used.status_code, used.json()["error"]) == (409, "admission_used")
    assert (await api.http.get("/v1/products/tee")).json()["reserved"] == 2

    state = await room(api)
    assert state["admissions"] == [
        {
            "ticket": ann["ticket"],
            "admitted_at": state["admissions"][0]["admitted_at"],
            "expires_at": ann["admission_expires_at"],
            "used_at": state["admissions"][0]["used_at"],
            "reservation_id": held.json()["id"],
        }
    ]
    assert state["admissions"][0]["used_at"] is not None
    assert {name: state[name] for name in ("sku", "waiting_room", "started")} == {
        "sku": "tee",
        "waiting_room": ONE,
        "started": True,
    }
    assert (state["waiting"], state["active"], state["admitted"], state["used"]) == (1, 0, 1, 1)


async def test_an_idempotent_retry_with_the_used_token_answers_the_same_hold(api: Api) -> None:
    assert (await api.put_product("tee", 5, waiting_room=ROOM)).status_code == 200
    token = await admitted(api, "ann")
    body = {"items": [{"sku": "tee", "quantity": 1}], "customer_id": "ann"}
    body["admission_token"] = token
    headers = {"Idempotency-Key": "cart-1"}
    first = await api.http.post("/v1/reservations", json=body, headers=headers)
    retry = await api.http.post("/v1/reservations", json=body, headers=headers)
    assert (first.status_code, retry.status_code) == (201, 201), retry.text
    assert retry.json() == first.json()
    assert (await api.http.get("/v1/products/tee")).json()["reserved"] == 1


async def test_a_checkout_with_items_needs_the_admission_too(shop: Shop) -> None:
    assert (await shop.api.put_product("tee", 5, waiting_room=ROOM)).status_code == 200
    refused = await shop.checkout(("tee", 1), customer_id="ann")
    assert (refused.status_code, refused.json()["error"]) == (403, "admission_required")
    token = await admitted(shop.api, "ann")
    answer = await shop.checkout(("tee", 1), customer_id="ann", admission_token=token)
    assert answer.status_code == 201, answer.text
    used = await shop.checkout(("tee", 1), customer_id="ann", admission_token=token)
    assert (used.status_code, used.json()["error"]) == (409, "admission_used")


async def test_waiting_tickets_answer_sold_out(api: Api) -> None:
    assert (await api.put_product("tee", 1, waiting_room=ONE)).status_code == 200
    token = await admitted(api, "ann")
    bob = (await join(api, customer_id="bob")).json()
    assert (await api.reserve(("tee", 1), customer_id="ann", admission_token=token)).is_success
    polled = (await api.http.get(f"/v1/queue/tee/{bob['ticket']}")).json()
    assert (polled["status"], polled["position"]) == ("sold_out", 1)


async def test_the_sold_out_memory_only_ever_refuses_a_request_without_admission(
    make_api: MakeApi,
) -> None:
    api = await make_api(sold_out_cache_seconds=3600.0)
    assert (await api.put_product("tee", 1, waiting_room=ROOM)).status_code == 200
    ann, bob = await admitted(api, "ann"), await admitted(api, "bob")
    assert (await api.reserve(("tee", 1), customer_id="ann", admission_token=ann)).is_success
    short = await api.reserve(("tee", 1), customer_id="bob", admission_token=bob)
    assert (short.status_code, short.json()["error"]) == (409, "insufficient_stock")
    # Remembered as sold out: refused from memory, with or without a token; nothing changes.
    for fields in ({}, {"admission_token": bob}, {"admission_token": "tee." + "A" * 22}):
        answer = await api.reserve(("tee", 1), customer_id="bob", **fields)
        assert answer.status_code == 409, answer.text
    assert (await api.http.get("/v1/products/tee")).json()["reserved"] == 1
    state = await room(api)
    assert (state["admitted"], state["used"]) == (2, 1)  # bob's token is still his to use


# -- errors and bad input --------------------------------------------------------------------------


async def test_every_error_of_the_queue_routes(api: Api) -> None:
    assert (await api.put_product("tee", 5, waiting_room=ONE)).status_code == 200
    assert (await api.put_product("mug", 5)).status_code == 200
    ticket = (await join(api, customer_id="ann")).json()["ticket"]
    missing = "A" * 22
    expected = [
        ("POST", "/v1/queue/nope", 404, "unknown_sku"),
        ("GET", f"/v1/queue/nope/{missing}", 404, "unknown_sku"),
        ("POST", "/v1/queue/mug", 409, "no_waiting_room"),
        ("GET", f"/v1/queue/mug/{missing}", 409, "no_waiting_room"),
        ("GET", f"/v1/queue/tee/{missing}", 404, "ticket_not_found"),
        ("GET", f"/v1/queue/mug/{ticket}", 409, "no_waiting_room"),
        ("GET", "/v1/queue/t%7Bee/" + missing, 422, "invalid_request"),
        ("POST", "/v1/queue/t%7Bee", 422, "invalid_request"),
        ("GET", "/v1/queue/tee/short", 422, "invalid_request"),
        ("GET", f"/v1/queue/tee/{missing}A", 422, "invalid_request"),
        ("GET", "/v1/queue/tee/" + "%2A" * 22, 422, "invalid_request"),
    ]
    for method, path, status, code in expected:
        answer = await api.http.request(method, path)
        assert (answer.status_code, answer.json()["error"]) == (status, code), (path, answer.text)
    admin = [
        ("/v1/queue/nope", ADMIN, 404, "unknown_sku"),
        ("/v1/queue/mug", ADMIN, 409, "no_waiting_room"),
        ("/v1/queue/tee", {}, 401, "unauthorized"),
        ("/v1/queue/t%7Bee", ADMIN, 422, "invalid_request"),
    ]
    for path, headers, status, code in admin:
        answer = await api.http.get(path, headers=headers)
        assert (answer.status_code, answer.json()["error"]) == (status, code), (path, answer.text)
    assert (await room(api))["waiting"] == 0  # ann was admitted; nothing else joined


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"{", JSON, 422),
        (b"[]", JSON, 422),
        (b'{"customer_id": 5}', JSON, 422),
        (b'{"customer_id": ""}', JSON, 422),
        (b'{"customer_id": "a b"}', JSON, 422),
        (b'{"customer": "ann"}', JSON, 422),
        (b'{"customer_id": "ann"}', {"Content-Type": "text/plain"}, 415),
        (b'{"customer_id": "ann"}', {}, 415),
        (b"x" * (65 * 1024), JSON, 413),
    ],
)
async def test_a_bad_join_is_a_4xx_and_joins_nobody(
    api: Api, content: bytes, headers: dict[str, str], status: int
) -> None:
    assert (await api.put_product("tee", 5, waiting_room=ONE)).status_code == 200
    assert (await join(api)).status_code == 201  # admitted: the line is empty
    answer = await api.http.post("/v1/queue/tee", content=content, headers=headers)
    assert answer.status_code == status, answer.text
    state = await room(api)
    assert (state["waiting"], state["admitted"]) == (0, 1)


async def test_a_join_without_a_body_is_anonymous(api: Api) -> None:
    assert (await api.put_product("tee", 5, waiting_room=ONE)).status_code == 200
    empty = [await api.http.post("/v1/queue/tee") for _ in range(2)]
    empty.append(await api.http.post("/v1/queue/tee", content=b"", headers=JSON))
    assert [answer.status_code for answer in empty] == [201, 201, 201]
    assert len({answer.json()["ticket"] for answer in empty}) == 3
    assert [answer.json()["position"] for answer in empty] == [0, 1, 2]


@pytest.mark.parametrize(
    "token",
    ["", "x" * 201, 5, None],
)
async def test_a_bad_admission_token_in_a_reserve_body(api: Api, token: Any) -> None:
    assert (await api.put_product("tee", 5, waiting_room=ROOM)).status_code == 200
    answer = await api.reserve(("tee", 1), admission_token=token)
    if token is None:  # null: no token
        assert (answer.status_code, answer.json()["error"]) == (403, "admission_required")
    else:
        assert (answer.status_code, answer.json()["error"]) == (422, "invalid_request")
    assert (await api.http.get("/v1/products/tee")).json()["reserved"] == 0


# -- verified customers --------------------------------------------------------------------------


async def test_with_customer_tokens_the_verified_customer_is_the_buyer(make_api: MakeApi) -> None:
    api = await make_api(customer_token_secret=SECRET, customer_token_issuer=ISSUER)
    assert (await api.put_product("tee", 5, waiting_room=ROOM)).status_code == 200
    alice, bob = bearer(mint("alice")), bearer(mint("bob"))
    first = await api.http.post("/v1/queue/tee", headers=alice)
    again = await api.http.post("/v1/queue/tee", json={"customer_id": "alice"}, headers=alice)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["ticket"] == first.json()["ticket"]
    posing = await api.http.post("/v1/queue/tee", json={"customer_id": "alice"}, headers=bob)
    assert (posing.status_code, posing.json()["error"]) == (403, "customer_mismatch")
    unsigned = await api.http.post("/v1/queue/tee", json={"customer_id": "alice"})
    assert unsigned.status_code == 401
    token = first.json()["admission_token"]
    cart = {"items": [{"sku": "tee", "quantity": 1}], "admission_token": token}
    stolen = await api.http.post("/v1/reservations", json=cart, headers=bob)
    assert (stolen.status_code, stolen.json()["error"]) == (403, "admission_invalid")
    anonymous = await api.http.post("/v1/reservations", json=cart)
    assert (anonymous.status_code, anonymous.json()["error"]) == (403, "admission_invalid")
    own = await api.http.post("/v1/reservations", json=cart, headers=alice)
    assert own.status_code == 201, own.text
    assert (await room(api))["admitted"] == 1  # bob's and the body-less requests joined nobody


# -- reconcile and the self-rebuild ----------------------------------------------------------------


async def test_reconcile_and_the_self_rebuild_restore_the_room(api: Api) -> None:
    assert (await api.put_product("tee", 5, waiting_room=ROOM)).status_code == 200
    services = api.services
    stock_key = services.inventory.keys.pool("default").stock

    await services.inventory.client.hdel(stock_key, "tee:room")  # a room Redis lost
    assert (await api.reserve(("tee", 1))).status_code == 201
    await reconcile(services.inventory, services.products, services.orders)
    assert (await api.reserve(("tee", 1))).json()["error"] == "admission_required"

    await services.inventory.client.delete(stock_key)  # the pool's counters lost
    assert await services.recovery.rebuild() == 1
    services.inventory.reads.forget()
    view = (await api.http.get("/v1/products/tee")).json()
    assert view["waiting_room"] == ROOM
    assert (await api.reserve(("tee", 1))).json()["error"] == "admission_required"
    assert (await join(api)).json()["status"] == "admitted"
