"""Bad input over HTTP: a clear 4xx with the right code, and Redis and MongoDB unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api import ADMIN, Api
from tests.shop import MakeShop

PRODUCT = {"name": "Tee", "price": 2500, "currency": "eur", "stock": 5}
JSON = {"Content-Type": "application/json"}


def reserve_body(*lines: Any, **extra: Any) -> bytes:
    return json.dumps({"items": list(lines), **extra}).encode()


def line(sku: Any = "tee", quantity: Any = 1) -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity}


# (case, method, path, raw body, headers, status, error code)
CASES: list[tuple[str, str, str, bytes | None, dict[str, str], int, str]] = [
    ("malformed json", "POST", "/v1/reservations", b'{"items": [', JSON, 422, "invalid_request"),
    ("not an object", "POST", "/v1/reservations", b"[1, 2]", JSON, 422, "invalid_request"),
    ("empty body", "POST", "/v1/reservations", b"", JSON, 422, "invalid_request"),
    (
        "items not a list",
        "POST",
        "/v1/reservations",
        b'{"items": {"sku": "tee"}}',
        JSON,
        422,
        "invalid_request",
    ),
    (
        "unknown field",
        "POST",
        "/v1/reservations",
        reserve_body(line(), coupon="FREE"),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "unknown line field",
        "POST",
        "/v1/reservations",
        reserve_body({"sku": "tee", "quantity": 1, "price": 0}),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "float quantity",
        "POST",
        "/v1/reservations",
        reserve_body(line(quantity=1.5)),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "integral float quantity",
        "POST",
        "/v1/reservations",
        reserve_body(line(quantity=1.0)),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "string quantity",
        "POST",
        "/v1/reservations",
        reserve_body(line(quantity="1")),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "bool quantity",
        "POST",
        "/v1/reservations",
        reserve_body(line(quantity=True)),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "zero quantity",
        "POST",
        "/v1/reservations",
        reserve_body(line(quantity=0)),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "negative quantity",
        "POST",
        "/v1/reservations",
        reserve_body(line(quantity=-3)),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "10^12 quantity",
        "POST",
        "/v1/reservations",
        reserve_body(line(quantity=10**12)),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "huge integer",
        "POST",
        "/v1/reservations",
        b'{"items":[{"sku":"tee","quantity":' + b"9" * 40 + b"}]}",
        JSON,
        422,
        "invalid_request",
    ),
    (
        "empty sku",
        "POST",
        "/v1/reservations",
        reserve_body(line(sku="")),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "oversized sku",
        "POST",
        "/v1/reservations",
        reserve_body(line(sku="x" * 65)),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "unicode sku",
        "POST",
        "/v1/reservations",
        reserve_body(line(sku="tée")),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "brace sku",
        "POST",
        "/v1/reservations",
        reserve_body(line(sku="{default}")),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "null sku",
        "POST",
        "/v1/reservations",
        reserve_body(line(sku=None)),
        JSON,
        422,
        "invalid_request",
    ),
    ("empty cart", "POST", "/v1/reservations", reserve_body(), JSON, 422, "invalid_request"),
    (
        "101-line cart",
        "POST",
        "/v1/reservations",
        reserve_body(*(line(sku=f"s{i}") for i in range(101))),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "bad customer id",
        "POST",
        "/v1/reservations",
        reserve_body(line(), customer_id="a b"),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "1 MB body",
        "POST",
        "/v1/reservations",
        b'{"items": [' + b" " * (1 << 20) + b"]}",
        JSON,
        413,
        "payload_too_large",
    ),
    (
        "bad idempotency key",
        "POST",
        "/v1/reservations",
        reserve_body(line()),
        {**JSON, "Idempotency-Key": "k" * 256},
        422,
        "invalid_request",
    ),
    (
        "product without token",
        "PUT",
        "/v1/products/new",
        json.dumps(PRODUCT).encode(),
        JSON,
        401,
        "unauthorized",
    ),
    (
        "product with wrong token",
        "PUT",
        "/v1/products/new",
        json.dumps(PRODUCT).encode(),
        {**JSON, "Authorization": "Bearer wrong"},
        401,
        "unauthorized",
    ),
    (
        "product with empty bearer",
        "PUT",
        "/v1/products/new",
        json.dumps(PRODUCT).encode(),
        {**JSON, "Authorization": "Bearer "},
        401,
        "unauthorized",
    ),
    (
        "product float price",
        "PUT",
        "/v1/products/new",
        json.dumps({**PRODUCT, "price": 25.5}).encode(),
        {**JSON, **ADMIN},
        422,
        "invalid_request",
    ),
    (
        "product string stock",
        "PUT",
        "/v1/products/new",
        json.dumps({**PRODUCT, "stock": "5"}).encode(),
        {**JSON, **ADMIN},
        422,
        "invalid_request",
    ),
    (
        "product negative stock",
        "PUT",
        "/v1/products/new",
        json.dumps({**PRODUCT, "stock": -1}).encode(),
        {**JSON, **ADMIN},
        422,
        "invalid_request",
    ),
    (
        "product bad currency",
        "PUT",
        "/v1/products/new",
        json.dumps({**PRODUCT, "currency": "euro"}).encode(),
        {**JSON, **ADMIN},
        422,
        "invalid_request",
    ),
    (
        "product brace pool",
        "PUT",
        "/v1/products/new",
        json.dumps({**PRODUCT, "pool": "a}b"}).encode(),
        {**JSON, **ADMIN},
        422,
        "invalid_request",
    ),
    (
        "product unknown field",
        "PUT",
        "/v1/products/new",
        json.dumps({**PRODUCT, "color": "red"}).encode(),
        {**JSON, **ADMIN},
        422,
        "invalid_request",
    ),
    (
        "product missing name",
        "PUT",
        "/v1/products/new",
        json.dumps({k: v for k, v in PRODUCT.items() if k != "name"}).encode(),
        {**JSON, **ADMIN},
        422,
        "invalid_request",
    ),
    (
        "product brace sku path",
        "PUT",
        "/v1/products/a%7Bb%7D",
        json.dumps(PRODUCT).encode(),
        {**JSON, **ADMIN},
        422,
        "invalid_request",
    ),
    (
        "product unicode sku path",
        "PUT",
        "/v1/products/t%C3%A9e",
        json.dumps(PRODUCT).encode(),
        {**JSON, **ADMIN},
        422,
        "invalid_request",
    ),
    (
        "product oversized sku path",
        "PUT",
        "/v1/products/" + "x" * 65,
        json.dumps(PRODUCT).encode(),
        {**JSON, **ADMIN},
        422,
        "invalid_request",
    ),
    (
        "product 1 MB body",
        "PUT",
        "/v1/products/new",
        b" " * (1 << 20),
        {**JSON, **ADMIN},
        413,
        "payload_too_large",
    ),
    (
        "checkout malformed json",
        "POST",
        "/v1/checkout",
        b'{"items": [',
        JSON,
        422,
        "invalid_request",
    ),
    (
        "checkout both forms",
        "POST",
        "/v1/checkout",
        reserve_body(line(), reservation_id="default.abcdefghijklmnopqrstuv"),
        JSON,
        422,
        "invalid_request",
    ),
    ("checkout neither form", "POST", "/v1/checkout", b"{}", JSON, 422, "invalid_request"),
    (
        "checkout float quantity",
        "POST",
        "/v1/checkout",
        reserve_body(line(quantity=2.5)),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "checkout unknown field",
        "POST",
        "/v1/checkout",
        reserve_body(line(), price=1),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "checkout bad email",
        "POST",
        "/v1/checkout",
        reserve_body(line(), customer_email="x"),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "checkout 101 lines",
        "POST",
        "/v1/checkout",
        reserve_body(*(line(sku=f"s{i}") for i in range(101))),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "checkout 1 MB body",
        "POST",
        "/v1/checkout",
        b" " * (1 << 20),
        JSON,
        413,
        "payload_too_large",
    ),
    (
        "webhook without signature",
        "POST",
        "/v1/webhooks/stripe",
        b"{}",
        JSON,
        400,
        "invalid_signature",
    ),
    (
        "invalid utf-8 in a string",
        "POST",
        "/v1/reservations",
        b'{"items":[{"sku":"\xff","quantity":1}]}',
        JSON,
        422,
        "invalid_request",
    ),
    (
        "invalid utf-8 in a key",
        "POST",
        "/v1/reservations",
        b'{"\xff":1}',
        JSON,
        422,
        "invalid_request",
    ),
    (
        "lone surrogate escape",
        "POST",
        "/v1/reservations",
        b'{"items":[{"sku":"\\ud800","quantity":1}]}',
        JSON,
        422,
        "invalid_request",
    ),
    (
        "checkout invalid utf-8",
        "POST",
        "/v1/checkout",
        b'{"items":[{"sku":"\xff","quantity":1}]}',
        JSON,
        422,
        "invalid_request",
    ),
    (
        "product invalid utf-8",
        "PUT",
        "/v1/products/tee",
        b'{"name":"\xff","price":1,"currency":"eur","stock":1}',
        {**JSON, **ADMIN},
        422,
        "invalid_request",
    ),
    (
        "deeply nested body",
        "POST",
        "/v1/reservations",
        b'{"items":' + b"[" * 30_000 + b"]" * 30_000 + b"}",
        JSON,
        422,
        "invalid_request",
    ),
    *(
        (
            f"product name with {what}",
            "PUT",
            "/v1/products/tee",
            json.dumps({**PRODUCT, "name": f"Tee{char}shirt"}).encode(),
            {**JSON, **ADMIN},
            422,
            "invalid_request",
        )
        for what, char in [
            ("NUL", "\x00"),
            ("CR LF", "\r\n"),
            ("a C1 control", "\x85"),
            ("a line separator", "\u2028"),
            ("a right-to-left override", "\u202e"),
            ("a right-to-left isolate", "\u2067"),
        ]
    ),
    (
        "price over what Stripe accepts",
        "PUT",
        "/v1/products/tee",
        json.dumps({**PRODUCT, "price": 100_000_000}).encode(),
        {**JSON, **ADMIN},
        422,
        "invalid_request",
    ),
    (
        "three-decimal price not ending in 0",
        "PUT",
        "/v1/products/tee",
        json.dumps({**PRODUCT, "price": 1005, "currency": "kwd"}).encode(),
        {**JSON, **ADMIN},
        422,
        "invalid_request",
    ),
    (
        "email with a control character",
        "POST",
        "/v1/checkout",
        reserve_body(line(), customer_email="a\x00b@example.com"),
        JSON,
        422,
        "invalid_request",
    ),
    (
        "anonymous cart over the limit",
        "POST",
        "/v1/reservations",
        reserve_body(line(sku="lim", quantity=2)),
        JSON,
        409,
        "customer_limit_exceeded",
    ),
    ("release of garbage id", "DELETE", "/v1/reservations/%7Bx%7D", None, {}, 404, "not_found"),
    ("orders without token", "GET", "/v1/orders", None, {}, 401, "unauthorized"),
    ("orders bad limit", "GET", "/v1/orders?limit=-1", None, ADMIN, 422, "invalid_request"),
    (
        "orders superscript limit",
        "GET",
        "/v1/orders?limit=%C2%B2",
        None,
        ADMIN,
        422,
        "invalid_request",
    ),
    ("orders unknown parameter", "GET", "/v1/orders?sort=x", None, ADMIN, 422, "invalid_request"),
]


async def snapshot(api: Api) -> tuple[dict[bytes, Any], dict[str, list[dict[str, Any]]]]:
    """Every Redis key of the app's key space with its value, and every MongoDB document."""
    redis = api.services.redis
    keys = sorted(
        [key async for key in redis.scan_iter(match=f"{api.services.settings.key_prefix}:*")]
    )
    values = {key: await redis.dump(key) for key in keys}
    db = api.services.db
    documents = {
        name: [doc async for doc in db[name].find({}, {"_id": 0}).sort("_id")]
        for name in ("products", "orders", "stripe_events")
    }
    return values, documents


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "headers", "status", "code"),
    CASES,
    ids=[case[0] for case in CASES],
)
async def test_bad_input_is_refused_and_changes_nothing(
    api: Api,
    case: str,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    assert (await api.put_product("tee", 5)).status_code == 200
    assert (await api.put_product("lim", 5, max_per_customer=1)).status_code == 200
    assert (await api.reserve(("tee", 1), customer_id="cus_1")).status_code == 201
    before = await snapshot(api)
    response = await api.http.request(method, path, content=body, headers=headers)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error"] == code
    assert answer["message"]
    assert isinstance(answer["details"], dict)
    assert await snapshot(api) == before


# -- Content-Type: what a form on another site can post is refused before it is read ---------

# Each JSON route with a body it takes, and what it answers when the body is declared JSON.
JSON_ROUTES = [
    (
        "PUT",
        "/v1/products/new",
        {"name": "New", "price": 100, "currency": "eur", "stock": 5},
        ADMIN,
        200,
    ),
    ("POST", "/v1/reservations", {"items": [line()], "customer_id": "cus_1"}, {}, 201),
    ("POST", "/v1/checkout", {"items": [line()], "customer_id": "cus_1"}, {}, 201),
]
# What an HTML form (its three enctypes) or a no-cors fetch may send with no preflight, and
# media types that are not application/json although they look like it.
NOT_JSON: list[list[tuple[str, str]]] = [
    [("Content-Type", "text/plain")],
    [("Content-Type", "text/plain;charset=UTF-8")],
    [("Content-Type", "application/x-www-form-urlencoded")],
    [("Content-Type", "multipart/form-data; boundary=x")],
    [],
    [("Content-Type", "application/merge-patch+json")],
    [("Content-Type", "application/jsonl")],
    [("Content-Type", "json")],
    [("Content-Type", "")],
    [("Content-Type", "application/json"), ("Content-Type", "text/plain")],
]


@pytest.mark.parametrize(
    ("method", "path", "body", "auth", "accepted"), JSON_ROUTES, ids=[r[1] for r in JSON_ROUTES]
)
async def test_a_body_not_declared_json_is_415_and_changes_nothing(
    make_shop: MakeShop,
    method: str,
    path: str,
    body: dict[str, Any],
    auth: dict[str, str],
    accepted: int,
) -> None:
    # Rate limits on: a refusal must not spend the address's or the customer's budget either.
    shop = await make_shop(ip_rate_limit=100, customer_rate_limit=100)
    assert (await shop.api.put_product("tee", 5)).status_code == 200
    raw = json.dumps(body).encode()
    before = await snapshot(shop.api)
    for declared in NOT_JSON:
        answer = await shop.http.request(
            method, path, content=raw, headers=[*auth.items(), *declared]
        )
        assert answer.status_code == 415, (declared, answer.text)
        assert answer.json()["error"] == "unsupported_media_type"
        assert answer.json()["message"]
        assert await snapshot(shop.api) == before, declared
    # No body at all is no exception (every one of these routes needs a body).
    empty = await shop.http.request(method, path, headers=auth)
    assert (empty.status_code, empty.json()["error"]) == (415, "unsupported_media_type")
    assert empty.json()["details"] == {"content_type": None}
    assert await snapshot(shop.api) == before
    assert shop.sim.requests() == []
    # The same bytes declared JSON go through.
    answer = await shop.http.request(method, path, content=raw, headers={**auth, **JSON})
    assert answer.status_code == accepted, answer.text


async def test_json_with_parameters_any_case_and_spaces_is_accepted(make_shop: MakeShop) -> None:
    shop = await make_shop()
    assert (await shop.api.put_product("tee", 10)).status_code == 200
    declared = [
        "application/json; charset=UTF-8",
        "application/json;charset=utf-8",
        "Application/JSON",
        "application/json ; charset=utf-8",
        "application/json\t",
    ]
    raw = reserve_body(line())
    for content_type in declared:
        headers = {"Content-Type": content_type}
        held = await shop.http.post("/v1/reservations", content=raw, headers=headers)
        assert held.status_code == 201, (content_type, held.text)
        session = await shop.http.post("/v1/checkout", content=raw, headers=headers)
        assert session.status_code == 201, (content_type, session.text)
    product = json.dumps({**PRODUCT, "stock": 20}).encode()
    headers = {**ADMIN, "Content-Type": "application/json; charset=utf-8"}
    stored = await shop.http.put("/v1/products/tee", content=product, headers=headers)
    assert (stored.status_code, stored.json()["stock"]) == (200, 20), stored.text


async def test_a_checkout_not_declared_json_is_refused_before_the_address_is_counted(
    make_shop: MakeShop,
) -> None:
    shop = await make_shop(ip_rate_limit=2, ip_rate_window_seconds=60)
    assert (await shop.api.put_product("tee", 5)).status_code == 200
    raw = json.dumps({"items": [line()]}).encode()
    for _ in range(5):
        refused = await shop.http.post(
            "/v1/checkout", content=raw, headers={"Content-Type": "text/plain"}
        )
        assert refused.status_code == 415
    # The address still has its whole budget: two checkouts, then the limit.
    for _ in range(2):
        assert (await shop.http.post("/v1/checkout", content=raw, headers=JSON)).status_code == 201
    limited = await shop.http.post("/v1/checkout", content=raw, headers=JSON)
    assert (limited.status_code, limited.json()["error"]) == (429, "rate_limited")
