"""Every endpoint of docs/api.md (but checkout and the webhook), in-process over real services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from domain.outcomes import Committed
from domain.statuses import OrderStatus
from persistence.orders import Order, OrderLine
from reservation.core.inventory import Inventory
from tests.api import ADMIN, ADMIN_TOKEN, JSON, Api, MakeApi
from tests.mongo import MongoServer


def error_of(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


async def test_put_and_get_products(api: Api) -> None:
    put = await api.put_product(
        "tee", 10, name="Tee", price=2500, currency="usd", max_per_customer=2
    )
    assert put.status_code == 200
    view = {
        "sku": "tee",
        "name": "Tee",
        "price": 2500,
        "currency": "usd",
        "pool": "default",
        "stock": 10,
        "reserved": 0,
        "sold": 0,
        "available": 10,
        "max_per_customer": 2,
        "sale_starts_at": None,
        "sale_ends_at": None,
        "on_sale": True,
        "waiting_room": None,
        "waitlist": 0,
    }
    assert put.json() == view
    assert (await api.http.get("/v1/products/tee")).json() == view
    await api.put_product("cap", 5, pool="drop-1")
    listed = (await api.http.get("/v1/products")).json()["data"]
    assert [(p["sku"], p["pool"]) for p in listed] == [("cap", "drop-1"), ("tee", "default")]
    await api.reserve(("tee", 2))
    live = (await api.http.get("/v1/products/tee")).json()
    assert (live["reserved"], live["available"]) == (2, 8)


async def test_product_update_keeps_pool_and_live_counts(api: Api) -> None:
    await api.put_product("cap", 5, pool="drop-1")
    await api.reserve(("cap", 2))
    updated = (await api.put_product("cap", 7, price=999)).json()
    assert (updated["pool"], updated["price"], updated["reserved"], updated["available"]) == (
        "drop-1",
        999,
        2,
        5,
    )


async def test_product_admin_needs_the_token(api: Api, make_api: MakeApi) -> None:
    body = {"name": "Tee", "price": 1, "currency": "eur", "stock": 1}
    missing = await api.http.put("/v1/products/tee", json=body)
    wrong = await api.http.put(
        "/v1/products/tee", json=body, headers={"Authorization": "Bearer nope"}
    )
    basic = await api.http.put(
        "/v1/products/tee", json=body, headers={"Authorization": "Basic dGVzdA=="}
    )
    for response in (missing, wrong, basic):
        assert error_of(response) == (401, "unauthorized")
    assert error_of(await api.http.get("/v1/products/tee")) == (404, "unknown_sku")
    closed = await make_api(admin_token=None)
    refused = await closed.http.put("/v1/products/tee", json=body, headers=ADMIN)
    assert error_of(refused) == (401, "unauthorized")


async def test_every_wrong_admin_token_is_401_every_time(api: Api) -> None:
    # Near misses too (a prefix, one more character, another case, spaces): compared whole,
    # in constant time, and refusing some never locks out the right one.
    near = [ADMIN_TOKEN[:-1], ADMIN_TOKEN + "x", ADMIN_TOKEN.upper(), f" {ADMIN_TOKEN}x", ""]
    body = {"name": "Tee", "price": 1, "currency": "eur", "stock": 1}
    for attempt in range(3):
        for token in near:
            answer = await api.http.put(
                "/v1/products/tee", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert error_of(answer) == (401, "unauthorized"), (attempt, token)
    assert error_of(await api.http.get("/v1/products/tee")) == (404, "unknown_sku")
    assert (await api.http.put("/v1/products/tee", json=body, headers=ADMIN)).status_code == 200


async def test_stock_below_committed_is_refused_and_catalog_kept(api: Api) -> None:
    await api.put_product("tee", 5, price=100)
    await api.reserve(("tee", 4))
    refused = await api.put_product("tee", 3, price=200)
    assert error_of(refused) == (409, "stock_below_committed")
    product = await api.services.products.get("tee")
    assert product is not None
    assert (product.stock, product.price) == (5, 100)


async def test_moving_a_sku_to_another_pool_is_refused(api: Api) -> None:
    await api.put_product("tee", 5)
    refused = await api.put_product("tee", 5, pool="other")
    assert error_of(refused) == (409, "pool_conflict")
    product = await api.services.products.get("tee")
    assert product is not None
    assert product.pool == "default"


async def test_reserve_get_and_release(api: Api) -> None:
    await api.put_product("tee", 5)
    created = await api.reserve(("tee", 2), customer_id="cus_1")
    assert created.status_code == 201
    view = created.json()
    assert (view["status"], view["items"], view["customer_id"]) == (
        "held",
        [{"sku": "tee", "quantity": 2}],
        "cus_1",
    )
    assert view["checkout_session_id"] is None
    assert view["expires_at"].endswith("Z")
    fetched = await api.http.get(f"/v1/reservations/{view['id']}")
    assert fetched.json() == view
    for _ in range(2):
        released = await api.http.delete(f"/v1/reservations/{view['id']}")
        assert released.status_code == 200
        assert released.json()["status"] == "released"
    assert (await api.http.get("/v1/products/tee")).json()["available"] == 5


async def test_release_after_commit_is_refused(api: Api) -> None:
    await api.put_product("tee", 5)
    rid = (await api.reserve(("tee", 1))).json()["id"]
    assert isinstance(await api.services.inventory.holds.commit(rid), Committed)
    assert error_of(await api.http.delete(f"/v1/reservations/{rid}")) == (409, "already_committed")


async def test_reserve_refusals(api: Api) -> None:
    await api.put_product("tee", 3, max_per_customer=2)
    await api.put_product("cap", 3, pool="drop-1")
    short = await api.reserve(("tee", 4))
    assert error_of(short) == (409, "insufficient_stock")
    assert short.json()["details"] == {"sku": "tee", "requested": 4, "available": 3}
    limited = await api.reserve(("tee", 3), customer_id="cus_1")
    assert error_of(limited) == (409, "customer_limit_exceeded")
    assert limited.json()["details"] == {"sku": "tee", "limit": 2}
    assert error_of(await api.reserve(("tee", 1), ("cap", 1))) == (422, "mixed_pools")
    assert error_of(await api.reserve(("nope", 1))) == (404, "unknown_sku")
    missing = await api.http.get("/v1/reservations/default.abcdefghijklmnopqrstuv")
    assert error_of(missing) == (404, "not_found")
    malformed = await api.http.delete("/v1/reservations/nonsense")
    assert error_of(malformed) == (404, "not_found")
    assert malformed.json()["details"] == {"reservation_id": "nonsense"}  # as sent, unquoted
    assert (await api.http.get("/v1/products/tee")).json()["available"] == 3


async def test_idempotency_key_returns_the_same_reservation(api: Api) -> None:
    await api.put_product("tee", 10)
    body = {"items": [{"sku": "tee", "quantity": 2}]}
    headers = {"Idempotency-Key": "order-42"}
    answers = await asyncio.gather(
        *(api.http.post("/v1/reservations", json=body, headers=headers) for _ in range(20))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert (await api.http.get("/v1/products/tee")).json()["reserved"] == 2
    other = await api.http.post(
        "/v1/reservations", json={"items": [{"sku": "tee", "quantity": 3}]}, headers=headers
    )
    assert error_of(other) == (422, "invalid_request")
    bad_key = await api.http.post(
        "/v1/reservations", json=body, headers={"Idempotency-Key": "x" * 300}
    )
    assert error_of(bad_key) == (422, "invalid_request")
    assert (await api.http.get("/v1/products/tee")).json()["reserved"] == 2


async def test_one_second_hold_shows_expired_and_units_available(make_api: MakeApi) -> None:
    api = await make_api(hold_seconds=1)
    await api.put_product("tee", 2)
    # Both units held (nothing is read within the hold's second: a busy machine may spend it
    # before the next line runs).
    held = await api.reserve(("tee", 2))
    assert (held.status_code, held.json()["status"]) == (201, "held")
    rid = held.json()["id"]
    await asyncio.sleep(1.2)
    assert (await api.http.get(f"/v1/reservations/{rid}")).json()["status"] == "expired"
    assert (await api.http.get("/v1/products/tee")).json()["available"] == 2


async def test_orders_for_admins(api: Api) -> None:
    orders = api.services.orders
    for number, status in enumerate(
        [OrderStatus.PAID, OrderStatus.PAID, OrderStatus.REFUNDED_OVERSOLD]
    ):
        await orders.upsert(
            Order(
                checkout_session_id=f"cs_test_{number}",
                reservation_id=f"default.reservation{number:08d}xx",
                status=status,
                items=(OrderLine("tee", 2, 1500),),
                amount_total=3000,
                currency="eur",
                customer_email="buyer@example.com",
                payment_intent=f"pi_{number}",
            )
        )
    one = await api.http.get("/v1/orders/cs_test_1", headers=ADMIN)
    assert one.status_code == 200
    body = one.json()
    assert body["status"] == "paid"
    assert body["items"] == [{"sku": "tee", "quantity": 2, "unit_amount": 1500}]
    assert set(body) == {
        "checkout_session_id",
        "reservation_id",
        "status",
        "items",
        "amount_total",
        "currency",
        "customer_email",
        "payment_intent",
        "created_at",
        "updated_at",
    }
    paid = (await api.http.get("/v1/orders?status=paid", headers=ADMIN)).json()["data"]
    assert sorted(o["checkout_session_id"] for o in paid) == ["cs_test_0", "cs_test_1"]
    limited = (await api.http.get("/v1/orders?limit=1", headers=ADMIN)).json()["data"]
    assert len(limited) == 1
    assert error_of(await api.http.get("/v1/orders/cs_nope", headers=ADMIN)) == (404, "not_found")
    assert error_of(await api.http.get("/v1/orders?status=lost", headers=ADMIN))[0] == 422
    assert error_of(await api.http.get("/v1/orders?limit=0", headers=ADMIN))[0] == 422
    assert error_of(await api.http.get("/v1/orders?limit=abc", headers=ADMIN))[0] == 422
    assert error_of(await api.http.get("/v1/orders"))[0] == 401
    assert error_of(await api.http.get("/v1/orders/cs_test_1"))[0] == 401


async def test_health_readiness_metrics_openapi(api: Api, make_api: MakeApi) -> None:
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "redis": "ok", "mongodb": "ok", "degraded": False}
    await api.put_product("tee", 1)
    await api.reserve(("tee", 1))
    await api.reserve(("tee", 1))
    metrics = (await api.http.get("/metrics")).text
    assert 'reservation_reservations_total{outcome="held"} 1.0' in metrics
    assert 'reservation_reservations_total{outcome="insufficient_stock"} 1.0' in metrics
    assert "reservation_reserve_seconds_bucket" in metrics
    assert 'route="/v1/reservations"' in metrics
    assert 'reservation_expired_holds{pool="default"} 0.0' in metrics
    document = (await api.http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) >= {
        "/v1/products/{sku}",
        "/v1/products",
        "/v1/reservations",
        "/v1/reservations/{reservation_id}",
        "/v1/orders/{checkout_session_id}",
        "/v1/orders",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    }
    assert "ReservationIn" in document["components"]["schemas"]


async def test_redis_down_is_503_and_not_ready(make_api: MakeApi) -> None:
    from harness.servers import free_port

    api = await make_api(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    ready = await api.http.get("/readyz")
    assert error_of(ready) == (503, "storage_unavailable")
    assert ready.json()["details"] == {"redis": "down", "mongodb": "ok"}
    assert ready.headers["retry-after"]
    refused = await api.reserve(("tee", 1))
    assert error_of(refused) == (503, "storage_unavailable")
    assert (await api.http.get("/healthz")).status_code == 200


async def test_start_restores_skus_missing_from_redis(api: Api, make_api: MakeApi) -> None:
    await api.put_product("tee", 7, max_per_customer=3)
    redis = api.services.redis
    async for key in redis.scan_iter(match=f"{api.services.settings.key_prefix}:*"):
        await redis.delete(key)
    restarted = await make_api()
    product = (await restarted.http.get("/v1/products/tee")).json()
    assert (product["stock"], product["available"], product["max_per_customer"]) == (7, 7, 3)
    assert (await restarted.reserve(("tee", 1))).status_code == 201


async def test_mongodb_down_is_503_for_its_routes_and_ready_degraded(
    make_api: MakeApi, tmp_path: Path
) -> None:
    server = MongoServer(tmp_path)
    uri = server.start()
    try:
        api = await make_api(mongodb_uri=uri)
        assert (await api.put_product("tee", 3)).status_code == 200
        server.stop()
        for response in (
            await api.put_product("tee", 4),
            await api.http.get("/v1/orders", headers=ADMIN),
        ):
            assert error_of(response) == (503, "storage_unavailable")
            assert response.headers["retry-after"]
        # Product reads are served from Redis: the crowd does not notice.
        assert (await api.http.get("/v1/products/tee")).json()["stock"] == 3
        assert [p["sku"] for p in (await api.http.get("/v1/products")).json()["data"]] == ["tee"]
        # Readiness follows the hot path (Redis): MongoDB down is degraded, not unready (a
        # load balancer keeps the instance while reserves still work).
        ready = await api.http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "redis": "ok",
            "mongodb": "down",
            "degraded": True,
        }
        assert (await api.reserve(("tee", 1))).status_code == 201
        assert (await api.http.get("/healthz")).status_code == 200
        server.start()
        assert (await api.http.get("/v1/products/tee")).json()["stock"] == 3
        async with asyncio.timeout(60):  # until the driver finds MongoDB again
            while True:
                if not (await api.http.get("/readyz")).json()["degraded"]:
                    break
                await asyncio.sleep(0.1)
    finally:
        server.stop()


async def test_a_limited_sku_bounds_anonymous_reservations(make_api: MakeApi) -> None:
    api = await make_api()
    await api.put_product("lim", 5, max_per_customer=1)
    refused = await api.reserve(("lim", 5))
    assert error_of(refused) == (409, "customer_limit_exceeded")
    assert refused.json()["details"] == {"sku": "lim", "limit": 1}
    assert (await api.http.get("/v1/products/lim")).json()["available"] == 5
    assert (await api.reserve(("lim", 1))).status_code == 201
    strict = await make_api(require_customer=True)
    anonymous = await strict.reserve(("lim", 1))
    assert error_of(anonymous) == (422, "customer_required")
    assert anonymous.json()["details"]["sku"] == "lim"
    checkout = await strict.http.post(
        "/v1/checkout", json={"items": [{"sku": "lim", "quantity": 1}]}
    )
    assert error_of(checkout) == (422, "customer_required")
    assert (await strict.http.get("/v1/products/lim")).json()["available"] == 4
    assert (await strict.reserve(("lim", 1), customer_id="cus_1")).status_code == 201
    await strict.put_product("free", 5)
    assert (await strict.reserve(("free", 2))).status_code == 201


async def test_idempotency_keys_are_scoped_by_customer(api: Api) -> None:
    await api.put_product("tee", 10)
    body = {"items": [{"sku": "tee", "quantity": 1}]}
    key = {"Idempotency-Key": "cart-7f3a"}

    async def post(**fields: str) -> httpx.Response:
        return await api.http.post("/v1/reservations", json={**body, **fields}, headers=key)

    alice, bob = await post(customer_id="alice"), await post(customer_id="bob")
    assert alice.status_code == bob.status_code == 201
    assert alice.json()["id"] != bob.json()["id"]
    assert (await post(customer_id="alice")).json()["id"] == alice.json()["id"]
    anonymous = await post()
    assert anonymous.status_code == 201
    assert anonymous.json()["id"] not in (alice.json()["id"], bob.json()["id"])
    assert (await post()).json()["id"] == anonymous.json()["id"]
    assert (await api.http.get("/v1/products/tee")).json()["reserved"] == 3


async def test_a_sold_out_refusal_with_a_new_key_stores_nothing(make_api: MakeApi) -> None:
    """The crowd retries a sold-out SKU with a new Idempotency-Key each time: once this process
    knows it is sold out, such a refusal writes no key (a key is kept for a day), while a key
    that did hold the last unit still gets its reservation back."""
    api = await make_api(sold_out_cache_seconds=3600)
    redis = api.services.redis
    keys = api.services.inventory.keys
    await api.put_product("drop", 1)
    body = {"items": [{"sku": "drop", "quantity": 1}], "customer_id": "cus_first"}
    first = await api.http.post("/v1/reservations", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201
    late = await api.http.post(
        "/v1/reservations",
        json={"items": [{"sku": "drop", "quantity": 1}]},
        headers={"Idempotency-Key": "k2"},
    )
    assert error_of(late) == (409, "insufficient_stock")  # Redis said so: remembered now

    pattern = keys.idempotency("*")
    stored = sorted(await redis.keys(pattern))
    for attempt in range(20):
        crowd = await api.http.post(
            "/v1/reservations",
            json={"items": [{"sku": "drop", "quantity": 1}], "customer_id": f"cus_{attempt}"},
            headers={"Idempotency-Key": f"crowd-{attempt}"},
        )
        assert error_of(crowd) == (409, "insufficient_stock")
    assert sorted(await redis.keys(pattern)) == stored

    # The buyer who held the last unit retries with its key: the same reservation, 201.
    again = await api.http.post("/v1/reservations", json=body, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    # ... and a changed cart under that key is still refused as such.
    other = await api.http.post(
        "/v1/reservations",
        json={**body, "items": [{"sku": "drop", "quantity": 2}]},
        headers={"Idempotency-Key": "k1"},
    )
    assert error_of(other) == (422, "invalid_request")
    product = (await api.http.get("/v1/products/drop")).json()
    assert (product["reserved"], product["available"]) == (1, 0)


async def test_error_answers_quote_input_boundedly(api: Api) -> None:
    long_id = "cs_" + "x" * 60_000
    missing = await api.http.get(f"/v1/orders/{long_id}", headers=ADMIN)
    assert error_of(missing) == (404, "not_found")
    assert len(missing.content) < 2_000
    assert len(missing.json()["details"]["checkout_session_id"]) <= 200
    field = "f" * 60_000
    unknown = await api.http.post(
        "/v1/reservations", content=b'{"items": [], "' + field.encode() + b'": 1}', headers=JSON
    )
    assert error_of(unknown) == (422, "invalid_request")
    assert len(unknown.content) < 2_000
    long_sku = "s" * 60_000
    bad_sku = await api.http.get(f"/v1/products/{long_sku}")
    assert error_of(bad_sku) == (422, "invalid_request")
    assert len(bad_sku.content) < 2_000


async def test_request_methods_are_bounded_metric_labels(api: Api) -> None:
    odd = "X" * 5_000
    answer = await api.http.request(odd, "/v1/products")
    assert answer.status_code == 405
    metrics = (await api.http.get("/metrics")).text
    assert odd not in metrics
    assert 'method="other",route="/v1/products",status="405"' in metrics


async def test_a_body_of_exactly_64_kib_is_read_and_one_byte_more_is_413(api: Api) -> None:
    await api.put_product("tee", 5)
    body = b'{"items": [{"sku": "tee", "quantity": 1}]}'
    exact = body + b" " * (64 * 1024 - len(body))
    accepted = await api.http.post("/v1/reservations", content=exact, headers=JSON)
    assert accepted.status_code == 201, accepted.text
    over = await api.http.post("/v1/reservations", content=exact + b" ", headers=JSON)
    assert error_of(over) == (413, "payload_too_large")
    assert over.json()["details"] == {"limit": 64 * 1024}
    # Streamed without a Content-Length, the body is cut off at the limit just the same.

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(exact) + 1, 4096):
            yield (exact + b" ")[start : start + 4096]

    streamed = await api.http.post("/v1/reservations", content=chunks(), headers=JSON)
    assert error_of(streamed) == (413, "payload_too_large")
    assert (await api.http.get("/v1/products/tee")).json()["reserved"] == 1


async def test_product_reads_make_no_mongodb_call(make_api: MakeApi, tmp_path: Path) -> None:
    server = MongoServer(tmp_path)
    uri = server.start()
    try:
        api = await make_api(mongodb_uri=uri)
        for number in range(20):
            await api.put_product(f"sku-{number:02d}", 5, price=100 + number, currency="usd")
        assert (await api.reserve(("sku-03", 2))).status_code == 201
        server.stop()  # any MongoDB call from here on would be a 503
        one = await api.http.get("/v1/products/sku-03")
        assert one.status_code == 200, one.text
        assert one.json() == {
            "sku": "sku-03",
            "name": "Product sku-03",
            "price": 103,
            "currency": "usd",
            "pool": "default",
            "stock": 5,
            "reserved": 2,
            "sold": 0,
            "available": 3,
            "max_per_customer": None,
            "sale_starts_at": None,
            "sale_ends_at": None,
            "on_sale": True,
            "waiting_room": None,
            "waitlist": 0,
        }
        listed = (await api.http.get("/v1/products")).json()["data"]
        assert [p["sku"] for p in listed] == [f"sku-{n:02d}" for n in range(20)]
        assert listed[3] == one.json()
        assert error_of(await api.http.get("/v1/products/nope")) == (503, "storage_unavailable")
    finally:
        server.stop()


async def test_a_put_is_seen_by_every_process_within_a_second(make_api: MakeApi) -> None:
    first, second = await make_api(), await make_api()
    await first.put_product("tee", 5, price=1500)
    assert (await second.http.get("/v1/products/tee")).json()["price"] == 1500
    await second.http.get("/v1/products")  # both have read (and remembered what they may) once
    await first.put_product("tee", 7, price=1900, name="Tee, repriced")
    await first.put_product("cap", 3, pool="drop-2")  # a new pool too

    async def seen_by_second() -> tuple[dict[str, Any], list[str]]:
        one = (await second.http.get("/v1/products/tee")).json()
        listed = (await second.http.get("/v1/products")).json()["data"]
        return one, [p["sku"] for p in listed]

    # Polled until seen, or until a read that began a second after the writes: whatever the
    # second process remembered from before them has lapsed by then, however slowly the reads
    # went (a read begun before the second and answered after it may still be stale).
    clock = asyncio.get_running_loop().time
    deadline = clock() + 1.0
    while True:
        began = clock()
        one, listed = await seen_by_second()
        if (one["price"], listed) == (1900, ["cap", "tee"]) or began >= deadline:
            break
        await asyncio.sleep(0.05)
    assert (one["price"], one["stock"], one["name"]) == (1900, 7, "Tee, repriced")
    assert listed == ["cap", "tee"]


async def test_a_process_reads_its_own_writes_at_once(api: Api) -> None:
    await api.put_product("tee", 5)
    assert (await api.http.get("/v1/products/tee")).json()["available"] == 5
    assert (await api.http.get("/v1/products")).json()["data"][0]["available"] == 5
    held = await api.reserve(("tee", 2))
    assert (await api.http.get("/v1/products/tee")).json()["available"] == 3
    assert (await api.http.get("/v1/products")).json()["data"][0]["available"] == 3
    await api.http.delete(f"/v1/reservations/{held.json()['id']}")
    assert (await api.http.get("/v1/products/tee")).json()["available"] == 5
    await api.put_product("tee", 9)
    assert (await api.http.get("/v1/products")).json()["data"][0]["stock"] == 9


async def test_a_process_starting_with_redis_empty_answers_from_mongodb_then_redis(
    make_api: MakeApi, tmp_path: Path
) -> None:
    server = MongoServer(tmp_path)
    uri = server.start()
    try:
        api = await make_api(mongodb_uri=uri)
        await api.put_product("tee", 5, price=1500)
        await api.put_product("cap", 3, price=900)
        services = api.services
        async for key in services.redis.scan_iter(match=f"{services.settings.key_prefix}:*"):
            await services.redis.delete(key)
        fresh = await make_api(mongodb_uri=uri, reconcile_on_start=False)
        # Nothing in Redis: MongoDB answers (nothing is available until counters are rebuilt).
        listed = (await fresh.http.get("/v1/products")).json()["data"]
        assert [(p["sku"], p["price"], p["available"]) for p in listed] == [
            ("cap", 900, 0),
            ("tee", 1500, 0),
        ]
        # Counters back (as reconcile does at start), but written without catalog entries, as
        # an older version would have: the first read falls back to MongoDB and fills Redis.
        for sku, stock in (("tee", 5), ("cap", 3)):
            await fresh.services.inventory.stock.set_stock(sku, stock)
        assert (await fresh.http.get("/v1/products/tee")).json()["available"] == 5
        assert len((await fresh.http.get("/v1/products")).json()["data"]) == 2
        server.stop()
        assert (await fresh.http.get("/v1/products/tee")).json()["price"] == 1500
        served = (await fresh.http.get("/v1/products")).json()["data"]
        assert [(p["sku"], p["price"]) for p in served] == [("cap", 900), ("tee", 1500)]
    finally:
        server.stop()


async def test_the_product_redis_assembles_is_the_view_the_service_builds(api: Api) -> None:
    import msgspec

    from reservation.api.products import product_view
    from reservation.api.schemas import ProductView

    await api.put_product("plain", 5)
    await api.put_product("big", 10**12, price=99_999_999, max_per_customer=3)
    await api.put_product("odd", 2, name='Tee "Ünïcødé" \\\\ — 日本 \\u00e9', currency="jpy")
    assert (await api.reserve(("big", 2))).status_code == 201
    catalog = api.services.catalog
    for sku in ("plain", "big", "odd"):
        raw = await api.services.inventory.stock.product_json(sku)
        assert raw is not None  # Redis had everything: no fallback
        assembled = msgspec.json.decode(raw, type=ProductView, strict=True)
        assert assembled == product_view(await catalog.get(sku))
        assert (await api.http.get(f"/v1/products/{sku}")).json() == msgspec.to_builtins(assembled)


async def test_units_that_come_back_are_offered_once_the_sold_out_memory_lapses(
    make_api: MakeApi,
) -> None:
    """Sold out is remembered for RESERVATION_SOLD_OUT_CACHE_SECONDS; after that a request
    asks Redis again, so units another process brought back are held through this one."""
    api = await make_api(sold_out_cache_seconds=0.2)
    await api.put_product("drop", 1)
    assert (await api.reserve(("drop", 1))).status_code == 201
    assert error_of(await api.reserve(("drop", 1))) == (409, "insufficient_stock")
    # Another process restocks (this one's memory is not told).
    elsewhere = Inventory(api.services.redis, keys=api.services.inventory.keys)
    await elsewhere.stock.set_stock("drop", 2, keep_limit=True)
    await asyncio.sleep(0.3)
    assert (await api.reserve(("drop", 1))).status_code == 201
