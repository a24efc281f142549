"""With customer tokens, limits, caps and keys bind verified customers (issue 24), through a
real `reservation serve`: a bot rotating body ids or borrowing bob's id gets nothing; alice's
limit holds across carts, checkouts and two processes; a verified reservation is its customer's
alone. Without a key: a warning at start, the ops flag, and forwarding headers ignored."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pymongo
import pytest

from tests.api import ADMIN
from tests.server import Server
from tests.shop import WEBHOOK_SECRET
from tests.stripe_fake import API_KEY, signed, simulators
from tests.tokens import SECRET, bearer, mint, name, put_product, refused, reserve, serving

CUSTOMER_RATE_LIMIT = 4
TOKENS = {"RESERVATION_CUSTOMER_TOKEN_SECRET": SECRET, "RESERVATION_CUSTOMER_RATE_LIMIT": "4"}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """Customer ids verified (HS256), paying through a Stripe simulator of its own; a customer
    may send 4 requests a minute and hold 5 carts (the default cap)."""
    with simulators() as make_sim:
        sim = make_sim()
        with serving(
            tmp_path_factory.mktemp("verified"),
            mongodb_uri,
            STRIPE_SECRET_KEY=API_KEY,
            STRIPE_API_BASE=sim.url,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            **TOKENS,
        ) as server:
            server.sim = sim
            yield server


@pytest.fixture(scope="module")
def other_process(
    shop: Server, tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str
) -> Iterator[Server]:
    """A second process of the same service: the same Redis keys, MongoDB and secret."""
    with serving(
        tmp_path_factory.mktemp("verified-2"),
        mongodb_uri,
        RESERVATION_KEY_PREFIX=shop.prefix,
        MONGODB_DATABASE=shop.database,
        **TOKENS,
    ) as server:
        yield server


def client_of(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10)


def checkout(client: httpx.Client, token: str | None, **body: object) -> httpx.Response:
    return client.post("/v1/checkout", json=body, headers=bearer(token) if token else {})


def test_rotating_body_ids_takes_nothing_more(shop: Server, other_process: Server) -> None:
    alice = name("alice")
    token = mint(alice)
    with client_of(shop) as client, client_of(other_process) as other:
        sku = put_product(client, 10, max_per_customer=1)
        assert reserve(client, sku, token).status_code == 201
        for invented in ("bot-1", "bot-2", "bot-3"):  # each an id the bot made up
            refused(reserve(client, sku, token, customer_id=invented), 403, "customer_mismatch")
            refused(reserve(client, sku, customer_id=invented), 401, "customer_token_required")
        # Her limit holds for another cart, a checkout of a cart, and in the other process.
        refused(reserve(client, sku, token), 409, "customer_limit_exceeded")
        items = [{"sku": sku, "quantity": 1}]
        refused(checkout(client, token, items=items), 409, "customer_limit_exceeded")
        refused(reserve(other, sku, token), 409, "customer_limit_exceeded")
        assert client.get(f"/v1/products/{sku}").json()["reserved"] == 1


def test_bob_is_never_locked_out_by_requests_naming_him(shop: Server) -> None:
    alice, bob = name("alice"), name("bob")
    with client_of(shop) as client:
        sku = put_product(client, 100)
        # More than bob's rate limit and hold cap, all naming bob: none counts for him.
        for _ in range(8):
            refused(reserve(client, sku, customer_id=bob), 401, "customer_token_required")
            refused(reserve(client, sku, mint(alice), customer_id=bob), 403, "customer_mismatch")
            refused(
                checkout(client, None, items=[{"sku": sku, "quantity": 1}], customer_id=bob),
                401,
                "customer_token_required",
            )
        held = reserve(client, sku, mint(bob))
        assert (held.status_code, held.json()["customer_id"]) == (201, bob)
        # Alice's own requests count for her alone: past her rate limit she waits, bob does not.
        answers = [
            reserve(client, sku, mint(alice)).status_code for _ in range(CUSTOMER_RATE_LIMIT)
        ]
        assert answers == [201] * CUSTOMER_RATE_LIMIT
        refused(reserve(client, sku, mint(alice)), 429, "rate_limited")
        assert reserve(client, sku, mint(bob)).status_code == 201


def test_a_verified_reservation_is_its_customer_s_alone(shop: Server) -> None:
    alice, bob = name("alice"), name("bob")
    with client_of(shop) as client:
        sku = put_product(client, 10)
        held = reserve(client, sku, mint(alice))
        rid = held.json()["id"]
        path = f"/v1/reservations/{rid}"
        for headers in ({}, bearer(mint(bob))):
            refused(client.get(path, headers=headers), 404, "not_found")
            refused(client.delete(path, headers=headers), 404, "not_found")
        refused(checkout(client, mint(bob), reservation_id=rid), 404, "not_found")
        refused(checkout(client, None, reservation_id=rid), 404, "not_found")
        refused(client.get(path, headers=bearer("forged")), 401, "invalid_customer_token")
        mine = client.get(path, headers=bearer(mint(alice)))
        assert (mine.status_code, mine.json()["status"]) == (200, "held")
        assert checkout(client, mint(alice), reservation_id=rid).status_code == 201
        released = client.delete(path, headers=bearer(mint(alice)))
        assert (released.status_code, released.json()["status"]) == (200, "released")


def test_anonymous_reservations_work_as_before(shop: Server) -> None:
    with client_of(shop) as client:
        sku = put_product(client, 10)
        held = reserve(client, sku)
        assert (held.status_code, held.json()["customer_id"]) == (201, None)
        path = f"/v1/reservations/{held.json()['id']}"
        assert client.get(path, headers=bearer(mint(name("bob")))).status_code == 200
        assert client.delete(path).json()["status"] == "released"


def test_idempotency_keys_are_scoped_by_the_verified_customer(shop: Server) -> None:
    alice, bob = name("alice"), name("bob")
    key = {"Idempotency-Key": name("key")}
    with client_of(shop) as client:
        sku = put_product(client, 10)
        body = {"items": [{"sku": sku, "quantity": 1}]}

        def post(token: str, **fields: str) -> httpx.Response:
            headers = {**key, **bearer(token)}
            return client.post("/v1/reservations", json={**body, **fields}, headers=headers)

        first = post(mint(alice))
        assert post(mint(alice)).json()["id"] == first.json()["id"]
        refused(post(mint(alice), customer_id=bob), 403, "customer_mismatch")
        assert post(mint(bob)).json()["id"] != first.json()["id"]


def test_the_session_and_the_order_carry_the_verified_customer(
    shop: Server, mongodb_uri: str
) -> None:
    carol = name("carol")
    assert shop.sim is not None
    with client_of(shop) as client:
        sku = put_product(client, 3)
        answer = checkout(client, mint(carol), items=[{"sku": sku, "quantity": 1}])
        assert answer.status_code == 201, answer.text
        session_id = answer.json()["checkout_session_id"]
        made = shop.sim.requests("POST", "/v1/checkout/sessions")
        params = next(
            r["params"] for r in made if r["params"]["metadata"].get("customer_id") == carol
        )
        assert params["metadata"]["reservation_id"] == answer.json()["reservation_id"]
        payload, headers = signed(shop.sim.complete(session_id, "paid"), WEBHOOK_SECRET)
        assert (
            client.post("/v1/webhooks/stripe", content=payload, headers=headers).status_code == 200
        )
        mongo: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(mongodb_uri)
        try:
            order = mongo[shop.database]["orders"].find_one({"checkout_session_id": session_id})
        finally:
            mongo.close()
        assert order is not None
        assert (order["status"], order["customer_id"]) == ("paid", carol)
        summary = client.get("/v1/ops/summary", headers=ADMIN).json()
        assert summary["customer_ids_verified"] is True


@pytest.fixture(scope="module")
def unverified(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """No key of customer tokens; 2 requests a minute per client address."""
    with serving(
        tmp_path_factory.mktemp("unverified"), mongodb_uri, RESERVATION_IP_RATE_LIMIT="2"
    ) as server:
        yield server


def test_without_a_key_serve_warns_and_the_ops_page_says_so(unverified: Server) -> None:
    assert unverified.log is not None
    assert "customer ids are not verified" in unverified.log.read_text()
    with client_of(unverified) as client:
        summary = client.get("/v1/ops/summary", headers=ADMIN).json()
    assert summary["customer_ids_verified"] is False


def test_forwarding_headers_from_loopback_are_ignored_by_uvicorn_too(unverified: Server) -> None:
    """uvicorn trusts X-Forwarded-For from 127.0.0.1 by default; the service turns that off, so
    a client on loopback cannot be somebody new by sending one (RESERVATION_TRUSTED_PROXY_HEADER
    is unset). Customer ids are the client's word here, so a token is not even read."""
    with client_of(unverified) as client:
        sku = put_product(client, 10)
        for address in ("192.0.2.1", "192.0.2.2"):
            forwarded = {"X-Forwarded-For": address, "X-Real-IP": address, **bearer("junk")}
            answer = client.post(
                "/v1/reservations", json={"items": [{"sku": sku, "quantity": 1}]}, headers=forwarded
            )
            assert answer.status_code == 201, answer.text
        spoofed = client.post(
            "/v1/reservations",
            json={"items": [{"sku": sku, "quantity": 1}], "customer_id": "anyone"},
            headers={"X-Forwarded-For": "198.51.100.7", "Forwarded": "for=198.51.100.8"},
        )
        refused(spoofed, 429, "rate_limited")
        assert spoofed.json()["details"]["scope"] == "ip"
