"""Waiting lists (issue 26) through the HTTP API: join, read and leave, with customer tokens on
and off; an offer made by a release checked out and paid through the Stripe simulator; the
admin's line, remove, close and open; the MongoDB copy of the joins; bad input on every route.
The core on every backend is tests/test_waitlist.py."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from domain.errors import StorageUnavailable
from persistence.waitlist import WaitlistJoin
from tests.api import ADMIN, JSON, Api, MakeApi
from tests.shop import MakeShop
from tests.tokens import ISSUER, SECRET, bearer, mint

TOKENS = {"customer_token_secret": SECRET, "customer_token_issuer": ISSUER}


async def sold_out(api: Api, sku: str = "tee", stock: int = 1, **fields: Any) -> list[str]:
    """`stock` units of `sku`, each held by an anonymous buyer of the crowd: the holds' ids."""
    assert (await api.put_product(sku, stock, **fields)).status_code == 200
    ids = []
    for _ in range(stock):
        held = await api.reserve((sku, 1))
        assert held.status_code == 201, held.text
        ids.append(held.json()["id"])
    return ids


async def join(
    api: Api,
    quantity: int = 1,
    sku: str = "tee",
    headers: dict[str, str] | None = None,
    **body: Any,
) -> httpx.Response:
    return await api.http.post(
        f"/v1/waitlist/{sku}", json={"quantity": quantity, **body}, headers=headers
    )


async def entry(
    api: Api, customer: str, sku: str = "tee", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    answer = await api.http.get(f"/v1/waitlist/{sku}/{customer}", headers=headers or ADMIN)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def line(api: Api, sku: str = "tee") -> dict[str, Any]:
    answer = await api.http.get(f"/v1/waitlist/{sku}", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def product(api: Api, sku: str = "tee") -> dict[str, Any]:
    found: dict[str, Any] = (await api.http.get(f"/v1/products/{sku}")).json()
    return found


async def joins_of(api: Api, customer: str, sku: str = "tee") -> list[WaitlistJoin]:
    return await api.services.waitlist.joins.joins_of(sku, customer)


# -- join, read, the line, leave ----------------------------------------------------------------


async def test_join_read_line_and_leave(api: Api) -> None:
    await sold_out(api, stock=2)
    first = await join(api, 2, customer_id="ann")
    assert first.status_code == 201, first.text
    assert first.headers["cache-control"] == "no-store"
    ann = first.json()
    assert ann == {
        "sku": "tee",
        "customer_id": "ann",
        "status": "waiting",
        "position": 1,
        "quantity": 2,
        "joined_at": ann["joined_at"],
        "offer": None,
    }
    assert ann["joined_at"].endswith("Z")
    again = await join(api, 1, customer_id="ann")  # the same place, the first quantity
    assert (again.status_code, again.json()) == (200, ann)
    bob = await join(api, customer_id="bob")
    assert (bob.status_code, bob.json()["position"]) == (201, 2)
    assert await entry(api, "ann") == ann
    read = await api.http.get("/v1/waitlist/tee/bob")  # tokens off: anybody reads it
    assert (read.status_code, read.json()) == (200, bob.json())
    assert read.headers["cache-control"] == "no-store"

    view = await product(api)
    assert (view["waitlist"], view["available"], view["reserved"]) == (2, 0, 2)
    assert await line(api) == {
        "sku": "tee",
        "closed": False,
        "waiting": 2,
        "offers": 0,
        "line": [
            {"customer_id": "ann", "quantity": 2, "joined_at": ann["joined_at"]},
            {"customer_id": "bob", "quantity": 1, "joined_at": bob.json()["joined_at"]},
        ],
    }

    left = await api.http.delete("/v1/waitlist/tee/ann")
    assert (left.status_code, left.content) == (204, b"")
    assert (await entry(api, "ann"))["status"] == "left"
    assert (await entry(api, "bob"))["position"] == 1
    assert (await api.http.delete("/v1/waitlist/tee/ann")).status_code == 204  # idempotent
    nobody = await api.http.delete("/v1/waitlist/tee/carl")
    assert (nobody.status_code, nobody.json()["error"]) == (404, "not_in_line")
    assert (await product(api))["waitlist"] == 1

    # MongoDB has each join; ann's is marked left.
    [ann_join] = await joins_of(api, "ann")
    assert (ann_join.state, ann_join.quantity, ann_join.position, ann_join.pool) == (
        "left",
        2,
        1,
        "default",
    )
    assert ann_join.left_at is not None
    assert [
        join.customer_id for join in await api.services.waitlist.joins.waiting_joins("tee")
    ] == ["bob"]


async def test_a_sku_on_sale_is_bought_not_waited_for(api: Api) -> None:
    assert (await api.put_product("tee", 3)).status_code == 200
    answer = await join(api, customer_id="ann")
    assert (answer.status_code, answer.json()["error"]) == (409, "on_sale")
    assert answer.json()["details"] == {"sku": "tee", "available": 3}
    assert (await line(api))["waiting"] == 0
    assert await joins_of(api, "ann") == []


async def test_a_sku_outside_its_sale_window_is_not_waited_for(api: Api) -> None:
    # Found by schemathesis: the answer the script gives was missing from the route's schema.
    put = await api.put_product("tee", 0, sale_starts_at="2999-01-01T00:00:00Z")
    assert put.status_code == 200, put.text
    answer = await join(api, customer_id="ann")
    assert (answer.status_code, answer.json()["error"]) == (409, "not_on_sale")
    assert answer.json()["details"] == {
        "sku": "tee",
        "starts_at": "2999-01-01T00:00:00.000Z",
        "ends_at": None,
    }
    assert (await line(api))["waiting"] == 0
    assert await joins_of(api, "ann") == []
    spec = (await api.http.get("/openapi.json")).json()
    conflict = spec["paths"]["/v1/waitlist/{sku}"]["post"]["responses"]["409"]
    assert "not_on_sale" in str(conflict)


async def test_a_join_within_the_per_customer_limit(api: Api) -> None:
    await sold_out(api, stock=2, max_per_customer=2)
    over = await join(api, 3, customer_id="ann")
    assert (over.status_code, over.json()["error"]) == (409, "customer_limit_exceeded")
    assert (await line(api))["waiting"] == 0
    assert (await join(api, 2, customer_id="ann")).status_code == 201


async def test_a_customer_id_with_a_slash_is_named_in_the_path(api: Api) -> None:
    await sold_out(api)
    assert (await join(api, customer_id="shop/ann?x#1")).status_code == 201
    path = "/v1/waitlist/tee/shop%2Fann%3Fx%231"
    assert (await api.http.get(path)).json()["customer_id"] == "shop/ann?x#1"
    assert (await api.http.delete(path)).status_code == 204
    assert (await api.http.get(path)).json()["status"] == "left"


# -- offers: a release hands the unit to the head; checked out and paid as any hold --------------


@pytest.mark.parametrize("tokens", [False, True], ids=["ids-unverified", "tokens"])
async def test_a_released_unit_is_offered_checked_out_and_paid(
    make_shop: MakeShop, tokens: bool
) -> None:
    shop = await make_shop(**(TOKENS if tokens else {}))
    api = shop.api
    [crowd] = await sold_out(api)
    ann = bearer(mint("ann")) if tokens else {}
    body: dict[str, Any] = {} if tokens else {"customer_id": "ann"}
    assert (await join(api, headers=ann, **body)).status_code == 201
    assert (
        await join(api, customer_id="bob", headers=bearer(mint("bob")) if tokens else None)
    ).is_success

    released = await api.http.delete(f"/v1/reservations/{crowd}")
    assert released.status_code == 200, released.text
    offered = await entry(api, "ann", headers=ann or ADMIN)
    assert offered["status"] == "offered"
    assert offered["position"] == 0
    offer = offered["offer"]
    assert offer["reservation_id"].startswith("default.wl-")
    # The unit went to ann in the release: the crowd finds nothing, the line shows the offer.
    view = await product(api)
    assert (view["available"], view["reserved"], view["waitlist"]) == (0, 1, 1)
    refused = await api.reserve(("tee", 1))
    assert (refused.status_code, refused.json()["error"]) == (409, "insufficient_stock")
    assert (await line(api))["offers"] == 1
    hold = await api.http.get(f"/v1/reservations/{offer['reservation_id']}", headers=ann)
    assert hold.json()["status"] == "held"
    assert (hold.json()["customer_id"], hold.json()["expires_at"]) == ("ann", offer["expires_at"])

    checkout = await api.http.post(
        "/v1/checkout", json={"reservation_id": offer["reservation_id"]}, headers=ann
    )
    assert checkout.status_code == 201, checkout.text
    session_id = checkout.json()["checkout_session_id"]
    paid = await shop.deliver(shop.sim.complete(session_id, "paid"))
    assert paid.status_code == 200, paid.text
    order = (await api.http.get(f"/v1/orders/{session_id}", headers=ADMIN)).json()
    assert (order["status"], order["reservation_id"]) == ("paid", offer["reservation_id"])
    assert (await entry(api, "ann", headers=ann or ADMIN))["status"] == "bought"
    view = await product(api)
    assert (view["sold"], view["reserved"], view["available"], view["waitlist"]) == (1, 0, 0, 1)
    assert (await entry(api, "bob"))["status"] == "waiting"


# -- customer tokens: the buyer is the token's; an entry is its customer's ----------------------


async def test_with_customer_tokens_an_entry_is_its_customers(make_api: MakeApi) -> None:
    api = await make_api(**TOKENS)
    await sold_out(api)
    alice, bob = bearer(mint("alice")), bearer(mint("bob"))
    first = await join(api, headers=alice)
    assert (first.status_code, first.json()["customer_id"]) == (201, "alice")
    again = await join(api, headers=alice, customer_id="alice")
    assert (again.status_code, again.json()) == (200, first.json())
    refusals = [
        (await join(api, headers=bob, customer_id="alice"), 403, "customer_mismatch"),
        (await join(api, customer_id="alice"), 401, "customer_token_required"),
        (await join(api), 422, "customer_required"),
        (await join(api, headers=bearer("not-a-token")), 401, "invalid_customer_token"),
    ]
    for answer, status, code in refusals:
        assert (answer.status_code, answer.json()["error"]) == (status, code), answer.text

    path = "/v1/waitlist/tee/alice"
    own = await api.http.get(path, headers=alice)
    assert (own.status_code, own.json()) == (200, first.json())
    assert (await api.http.get(path, headers=ADMIN)).json() == first.json()
    for method in ("GET", "DELETE"):
        for headers, status, code in [
            (bob, 403, "customer_mismatch"),
            ({}, 401, "customer_token_required"),
            (
                bearer(mint("alice", key="another-secret-0123456789abcdef-0123")),
                401,
                "invalid_customer_token",
            ),
            ({"Authorization": "Bearer wrong-admin-token"}, 401, "invalid_customer_token"),
        ]:
            answer = await api.http.request(method, path, headers=headers)
            assert (answer.status_code, answer.json()["error"]) == (status, code), answer.text
    assert (await line(api))["waiting"] == 1  # nobody else joined, alice is still waiting

    # bob joins as himself and leaves; the admin removes alice.
    assert (await join(api, headers=bob)).status_code == 201
    assert (await api.http.delete("/v1/waitlist/tee/bob", headers=bob)).status_code == 204
    assert (await api.http.delete(path, headers=ADMIN)).status_code == 204
    assert (await api.http.get(path, headers=alice)).json()["status"] == "left"
    assert (await line(api))["waiting"] == 0
    assert [join.state for join in await joins_of(api, "alice")] == ["left"]


# -- the admin: remove, close, open --------------------------------------------------------------


async def test_close_sends_the_line_away_and_open_lets_buyers_join_again(api: Api) -> None:
    await sold_out(api)
    for customer in ("ann", "bob"):
        assert (await join(api, customer_id=customer)).status_code == 201
    closed = await api.http.post("/v1/waitlist/tee/close", headers=ADMIN)
    assert (closed.status_code, closed.json()) == (
        200,
        {"sku": "tee", "closed": True, "removed": 2},
    )
    assert [(await entry(api, who))["status"] for who in ("ann", "bob")] == ["left", "left"]
    refused = await join(api, customer_id="carl")
    assert (refused.status_code, refused.json()["error"]) == (409, "waitlist_closed")
    assert (await line(api))["closed"] is True
    assert await api.services.waitlist.joins.waiting_joins("tee") == []

    opened = await api.http.post("/v1/waitlist/tee/open", headers=ADMIN)
    assert (opened.status_code, opened.json()) == (200, {"sku": "tee", "closed": False})
    rejoined = await join(api, 3, customer_id="ann")  # a new join, at the end of an empty line
    assert (rejoined.status_code, rejoined.json()["position"]) == (201, 1)
    history = await joins_of(api, "ann")
    assert [(join.state, join.quantity) for join in history] == [("left", 1), ("waiting", 3)]
    [waiting] = await api.services.waitlist.joins.waiting_joins("tee")
    assert (waiting.customer_id, waiting.quantity) == ("ann", 3)
    view = await product(api)
    assert (view["waitlist"], view["available"]) == (1, 0)


async def test_the_admin_routes_need_the_admin(api: Api) -> None:
    await sold_out(api)
    assert (await join(api, customer_id="ann")).status_code == 201
    for method, path in [
        ("GET", "/v1/waitlist/tee"),
        ("POST", "/v1/waitlist/tee/close"),
        ("POST", "/v1/waitlist/tee/open"),
    ]:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            answer = await api.http.request(method, path, headers=headers)
            assert (answer.status_code, answer.json()["error"]) == (401, "unauthorized")
    assert (await line(api))["waiting"] == 1


# -- limits and MongoDB failures -----------------------------------------------------------------


async def test_joins_count_against_the_limits_per_address_and_customer(make_api: MakeApi) -> None:
    api = await make_api(ip_rate_limit=3, customer_rate_limit=1, ip_rate_window_seconds=60)
    await sold_out(api)  # the product's PUT is not limited; the crowd's hold counts once
    assert (await join(api, customer_id="ann")).status_code == 201
    again = await join(api, customer_id="ann")
    assert (again.status_code, again.json()["error"]) == (429, "rate_limited")
    assert again.json()["details"]["scope"] == "customer"
    refused = await join(api, customer_id="bob")
    assert (refused.status_code, refused.json()["details"]["scope"]) == (429, "ip")
    assert (await line(api))["waiting"] == 1


async def test_mongodb_failing_does_not_fail_the_join_nor_the_leave(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await sold_out(api)
    joins = api.services.waitlist.joins

    async def down(*_: object) -> object:
        raise StorageUnavailable("MongoDB did not answer", backend="mongodb")

    monkeypatch.setattr(joins, "record", down)
    monkeypatch.setattr(joins, "mark_left", down)
    monkeypatch.setattr(joins, "close", down)
    with caplog.at_level(logging.WARNING, logger="reservation"):
        assert (await join(api, customer_id="ann")).status_code == 201
        assert (await join(api, customer_id="bob")).status_code == 201
        assert (await api.http.delete("/v1/waitlist/tee/ann")).status_code == 204
        closed = await api.http.post("/v1/waitlist/tee/close", headers=ADMIN)
    assert closed.json()["removed"] == 1
    metrics = api.services.metrics
    failures = {
        operation: metrics.sample("reservation_waitlist_record_failures_total", operation=operation)
        for operation in ("join", "leave", "close")
    }
    assert failures == {"join": 2, "leave": 1, "close": 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("not recorded in MongoDB" in message for message in warnings) == 4
    assert (await entry(api, "bob"))["status"] == "left"  # Redis decided
    monkeypatch.undo()
    assert await joins_of(api, "ann") == []


# -- bad input: a clear 4xx, nothing changed ----------------------------------------------------


JOIN_CASES: list[tuple[str, str, bytes, dict[str, str], int, str]] = [
    ("bad sku", "t%7Bee", b'{"quantity": 1, "customer_id": "carl"}', JSON, 422, "invalid_request"),
    ("long sku", "t" * 65, b'{"quantity": 1, "customer_id": "carl"}', JSON, 422, "invalid_request"),
    ("unknown sku", "nope", b'{"quantity": 1, "customer_id": "carl"}', JSON, 404, "unknown_sku"),
    (
        "zero quantity",
        "tee",
        b'{"quantity": 0, "customer_id": "carl"}',
        JSON,
        422,
        "invalid_request",
    ),
    ("negative", "tee", b'{"quantity": -1, "customer_id": "carl"}', JSON, 422, "invalid_request"),
    (
        "huge quantity",
        "tee",
        b'{"quantity": 1000001, "customer_id": "carl"}',
        JSON,
        422,
        "invalid_request",
    ),
    (
        "10^12",
        "tee",
        b'{"quantity": 1000000000000, "customer_id": "carl"}',
        JSON,
        422,
        "invalid_request",
    ),
    (
        "string quantity",
        "tee",
        b'{"quantity": "1", "customer_id": "carl"}',
        JSON,
        422,
        "invalid_request",
    ),
    (
        "float quantity",
        "tee",
        b'{"quantity": 1.0, "customer_id": "carl"}',
        JSON,
        422,
        "invalid_request",
    ),
    (
        "bool quantity",
        "tee",
        b'{"quantity": true, "customer_id": "carl"}',
        JSON,
        422,
        "invalid_request",
    ),
    ("no quantity", "tee", b'{"customer_id": "carl"}', JSON, 422, "invalid_request"),
    (
        "unknown field",
        "tee",
        b'{"quantity": 1, "customer_id": "carl", "vip": true}',
        JSON,
        422,
        "invalid_request",
    ),
    ("empty customer", "tee", b'{"quantity": 1, "customer_id": ""}', JSON, 422, "invalid_request"),
    (
        "spaced customer",
        "tee",
        b'{"quantity": 1, "customer_id": "a b"}',
        JSON,
        422,
        "invalid_request",
    ),
    ("number customer", "tee", b'{"quantity": 1, "customer_id": 5}', JSON, 422, "invalid_request"),
    (
        "long customer",
        "tee",
        b'{"quantity": 1, "customer_id": "' + b"c" * 129 + b'"}',
        JSON,
        422,
        "invalid_request",
    ),
    ("no customer", "tee", b'{"quantity": 1}', JSON, 422, "customer_required"),
    ("missing body", "tee", b"", JSON, 422, "invalid_request"),
    ("malformed", "tee", b'{"quantity": ', JSON, 422, "invalid_request"),
    ("not an object", "tee", b"[1]", JSON, 422, "invalid_request"),
    (
        "no content type",
        "tee",
        b'{"quantity": 1, "customer_id": "carl"}',
        {},
        415,
        "unsupported_media_type",
    ),
    (
        "text/plain",
        "tee",
        b'{"quantity": 1, "customer_id": "carl"}',
        {"Content-Type": "text/plain"},
        415,
        "unsupported_media_type",
    ),
    ("too large", "tee", b"x" * (65 * 1024), JSON, 413, "payload_too_large"),
]


async def snapshot(api: Api) -> tuple[Any, ...]:
    """Everything a waiting-list request could change: the line, the entries, the product, the
    MongoDB joins, the Redis keys of the pool's list."""
    keys = api.services.inventory.keys.pool("default")
    redis = api.services.redis
    return (
        await line(api),
        await product(api),
        await api.services.db["waitlist_joins"].count_documents({}),
        await redis.hgetall(keys.waitlist),
        await redis.zrange(keys.line, 0, -1),
    )


@pytest.mark.parametrize(
    ("sku", "content", "headers", "status", "code"),
    [case[1:] for case in JOIN_CASES],
    ids=[case[0] for case in JOIN_CASES],
)
async def test_a_bad_join_is_a_4xx_and_changes_nothing(
    api: Api, sku: str, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    await sold_out(api)
    assert (await join(api, customer_id="ann")).status_code == 201
    before = await snapshot(api)
    answer = await api.http.post(f"/v1/waitlist/{sku}", content=content, headers=headers)
    assert (answer.status_code, answer.json()["error"]) == (status, code), answer.text
    assert await snapshot(api) == before


ENTRY_CASES: list[tuple[str, str, dict[str, str], int, str]] = [
    ("bad sku", "/v1/waitlist/t%7Bee/ann", ADMIN, 422, "invalid_request"),
    ("unknown sku", "/v1/waitlist/nope/ann", ADMIN, 404, "unknown_sku"),
    ("spaced customer", "/v1/waitlist/tee/a%20b", ADMIN, 422, "invalid_request"),
    ("empty customer", "/v1/waitlist/tee/", ADMIN, 422, "invalid_request"),
    ("long customer", "/v1/waitlist/tee/" + "c" * 129, ADMIN, 422, "invalid_request"),
    ("not ascii", "/v1/waitlist/tee/%C3%A9", ADMIN, 422, "invalid_request"),
    ("not in line", "/v1/waitlist/tee/carl", ADMIN, 404, "not_in_line"),
    ("not in line, tokens off", "/v1/waitlist/tee/carl", {}, 404, "not_in_line"),
]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [case[1:] for case in ENTRY_CASES],
    ids=[case[0] for case in ENTRY_CASES],
)
async def test_a_bad_entry_request_is_a_4xx_and_changes_nothing(
    api: Api, method: str, path: str, headers: dict[str, str], status: int, code: str
) -> None:
    await sold_out(api)
    assert (await join(api, customer_id="ann")).status_code == 201
    before = await snapshot(api)
    answer = await api.http.request(method, path, headers=headers)
    assert (answer.status_code, answer.json()["error"]) == (status, code), answer.text
    assert await snapshot(api) == before


@pytest.mark.parametrize("path", ["/v1/waitlist/t%7Bee", "/v1/waitlist/nope"])
@pytest.mark.parametrize("action", ["", "/close", "/open"])
async def test_a_bad_sku_for_the_admin_is_a_4xx_and_changes_nothing(
    api: Api, path: str, action: str
) -> None:
    await sold_out(api)
    assert (await join(api, customer_id="ann")).status_code == 201
    before = await snapshot(api)
    answer = await api.http.request("GET" if not action else "POST", path + action, headers=ADMIN)
    expected = (422, "invalid_request") if "%7B" in path else (404, "unknown_sku")
    assert (answer.status_code, answer.json()["error"]) == expected, answer.text
    assert await snapshot(api) == before
