"""The API served by `reservation serve` in a subprocess, over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from harness.servers import free_port
from tests.api import ADMIN, JSON
from tests.conftest import REDIS_URL
from tests.server import Server, start_server, stop_server
from tests.shop import WEBHOOK_SECRET
from tests.stripe_fake import API_KEY, signed, simulators


async def test_six_hundred_buyers_for_fifty_units(server: Server) -> None:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
        body = {"name": "Drop", "price": 4900, "currency": "eur", "stock": 50}
        assert (await client.put("/v1/products/drop", json=body, headers=ADMIN)).status_code == 200
        answers = await asyncio.gather(
            *(
                client.post(
                    "/v1/reservations",
                    json={"items": [{"sku": "drop", "quantity": 1}], "customer_id": f"c{i}"},
                    headers={"X-Forwarded-For": f"198.18.{i // 256}.{i % 256}"},
                )
                for i in range(600)
            )
        )
        assert Counter(a.status_code for a in answers) == {201: 50, 409: 550}
        assert {a.json()["error"] for a in answers if a.status_code == 409} == {
            "insufficient_stock"
        }
        product = (await client.get("/v1/products/drop")).json()
        assert (product["reserved"], product["sold"], product["available"]) == (50, 0, 0)
        # 600 from one address, of a product in stock: its rate limit (120 a minute by
        # default) answers the rest 429, with Retry-After, and they hold nothing.
        plenty = {"name": "Plenty", "price": 900, "currency": "eur", "stock": 1000}
        put = await client.put("/v1/products/plenty", json=plenty, headers=ADMIN)
        assert put.status_code == 200
        one = {"X-Forwarded-For": "203.0.113.9"}
        again = await asyncio.gather(
            *(
                client.post(
                    "/v1/reservations",
                    json={"items": [{"sku": "plenty", "quantity": 1}]},
                    headers=one,
                )
                for _ in range(600)
            )
        )
        assert Counter(a.status_code for a in again) == {201: 120, 429: 480}
        assert all(int(a.headers["Retry-After"]) >= 1 for a in again if a.status_code == 429)
        assert (await client.get("/v1/products/plenty")).json()["reserved"] == 120


async def test_endpoints_over_real_http(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        body = {"name": "Tee", "price": 2500, "currency": "eur", "stock": 3}
        assert (await client.put("/v1/products/tee", json=body, headers=ADMIN)).status_code == 200
        created = await client.post(
            "/v1/reservations",
            json={"items": [{"sku": "tee", "quantity": 2}]},
            headers={"Idempotency-Key": "real-http-1"},
        )
        assert created.status_code == 201
        rid = created.json()["id"]
        assert (await client.get(f"/v1/reservations/{rid}")).json()["status"] == "held"
        assert (await client.delete(f"/v1/reservations/{rid}")).json()["status"] == "released"
        huge = await client.post(
            "/v1/reservations", content=b"{" + b" " * (1 << 20) + b"}", headers=JSON
        )
        assert huge.status_code == 413
        assert huge.json()["error"] == "payload_too_large"
        assert (await client.get("/readyz")).json()["status"] == "ready"
        assert "reservation_reservations_total" in (await client.get("/metrics")).text
        assert (await client.get("/openapi.json")).json()["openapi"].startswith("3.")
        assert (await client.get("/v1/orders", headers=ADMIN)).json() == {"data": []}


async def test_purchase_over_real_http(server: Server) -> None:
    assert server.sim is not None
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        body = {"name": "Mug", "price": 1800, "currency": "eur", "stock": 2}
        assert (await client.put("/v1/products/mug", json=body, headers=ADMIN)).status_code == 200
        checkout = await client.post(
            "/v1/checkout", json={"items": [{"sku": "mug", "quantity": 2}]}
        )
        assert checkout.status_code == 201, checkout.text
        session_id = checkout.json()["checkout_session_id"]
        event = server.sim.complete(session_id, "paid")
        now = int(time.time())
        payload, headers = signed(event, WEBHOOK_SECRET, now)
        delivered = await client.post("/v1/webhooks/stripe", content=payload, headers=headers)
        assert delivered.json() == {"received": True}
        # The same bytes again are a replay; the event signed again (Stripe's retry) is taken.
        replayed = await client.post("/v1/webhooks/stripe", content=payload, headers=headers)
        assert (replayed.status_code, replayed.json()["error"]) == (400, "replayed_signature")
        payload, headers = signed(event, WEBHOOK_SECRET, now + 1)
        delivered = await client.post("/v1/webhooks/stripe", content=payload, headers=headers)
        assert delivered.json() == {"received": True}
        order = (await client.get(f"/v1/orders/{session_id}", headers=ADMIN)).json()
        assert (order["status"], order["amount_total"]) == ("paid", 3600)
        product = (await client.get("/v1/products/mug")).json()
        assert (product["sold"], product["available"]) == (2, 0)


def test_the_simulator_s_duplicate_deliveries_are_each_taken(
    tmp_path: Path, mongodb_uri: str
) -> None:
    """Every event delivered twice at once by the simulator: each copy is signed afresh, as
    Stripe signs every attempt, so neither is refused as a replay; one order per payment."""
    port = free_port()
    with simulators() as make_sim:
        sim = make_sim(
            webhook_url=f"http://127.0.0.1:{port}/v1/webhooks/stripe",
            webhook_secret=WEBHOOK_SECRET,
            duplicate_share=1.0,
        )
        server = start_server(
            tmp_path,
            mongodb_uri,
            port=port,
            STRIPE_SECRET_KEY=API_KEY,
            STRIPE_API_BASE=sim.url,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        try:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                body = {"name": "Mug", "price": 1800, "currency": "eur", "stock": 5}
                assert client.put("/v1/products/mug", json=body, headers=ADMIN).status_code == 200
                sessions = []
                for _ in range(3):
                    made = client.post(
                        "/v1/checkout", json={"items": [{"sku": "mug", "quantity": 1}]}
                    )
                    assert made.status_code == 201, made.text
                    sessions.append(made.json()["checkout_session_id"])
                    sim.complete(sessions[-1], "paid")
                deliveries = sim.wait_for_deliveries(lambda found: len(found) >= 6)
                assert [d["status"] for d in deliveries] == [200] * 6
                product = client.get("/v1/products/mug").json()
                assert (product["reserved"], product["sold"]) == (0, 3)
                for session_id in sessions:
                    paid = client.get(f"/v1/orders/{session_id}", headers=ADMIN).json()
                    assert paid["status"] == "paid"
        finally:
            stop_server(server, mongodb_uri)


async def test_a_crowd_of_connections_is_served_through_a_small_redis_pool(
    tmp_path: Path, mongodb_uri: str
) -> None:
    """300 requests at once on 300 connections, a pool of 2 Redis connections: every one is
    answered (they wait their turn for Redis, none is refused), and the process holds 2. They
    come from one address: its rate limit and its share of requests in flight are off."""
    server = start_server(
        tmp_path,
        mongodb_uri,
        RESERVATION_REDIS_POOL_SIZE="2",
        RESERVATION_IP_RATE_LIMIT="0",
        RESERVATION_MAX_REQUESTS_PER_CLIENT="0",
    )
    try:
        limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
            body = {"name": "Tee", "price": 2500, "currency": "eur", "stock": 1000}
            put = await client.put("/v1/products/tee", json=body, headers=ADMIN)
            assert put.status_code == 200
            cart = {"items": [{"sku": "tee", "quantity": 1}]}
            answers = await asyncio.gather(
                *(client.post("/v1/reservations", json=cart) for _ in range(300))
            )
            assert Counter(a.status_code for a in answers) == {201: 300}
            assert (await client.get("/v1/products/tee")).json()["reserved"] == 300
        redis_port = urlsplit(REDIS_URL).port or 6379
        held = [
            conn
            for conn in psutil.Process(server.process.pid).net_connections(kind="tcp")
            if conn.raddr and conn.raddr.port == redis_port
        ]
        assert 1 <= len(held) <= 2
    finally:
        stop_server(server, mongodb_uri)
