"""Rate limits: the sliding log on three backends, the client's address, and the 429s of the
API (real Redis, two apps sharing it, the Stripe simulator)."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from domain import errors
from domain.outcomes import Admitted, Limited
from reservation.api.client_address import client_address
from reservation.core.keys import KeySpace
from reservation.core.ratelimit import (
    CUSTOMER,
    IP,
    MAX_REQUESTS,
    MAX_WINDOW_SECONDS,
    RateLimit,
    RateLimiter,
    subject_digest,
)
from reservation.lua.library import RedisClient
from tests.api import JSON, Api, MakeApi
from tests.shop import MakeShop

# -- the sliding log (lua/rate_limit.lua) on Redis, fakeredis and a Redis Cluster ------------


def limiter(client: RedisClient, keyspace: KeySpace, requests: int, seconds: float) -> RateLimiter:
    return RateLimiter(
        client, keys=keyspace, per_ip=RateLimit(requests, seconds), per_customer=RateLimit(2, 60)
    )


async def redis_ms(client: RedisClient) -> int:
    seconds, micros = await client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def test_exactly_the_limit_is_admitted_then_refused_with_the_wait(
    client: RedisClient, keyspace: KeySpace
) -> None:
    limits = limiter(client, keyspace, 3, 60)
    assert [await limits.admit(IP, "192.0.2.1") for _ in range(3)] == [
        Admitted(2),
        Admitted(1),
        Admitted(0),
    ]
    log = keyspace.rate_log(IP, subject_digest("192.0.2.1"))
    for _ in range(2):
        refused = await limits.admit(IP, "192.0.2.1")
        assert isinstance(refused, Limited)
        # The oldest request leaves the window 60 s after it was admitted, a moment ago.
        assert 55_000 < refused.retry_after_ms <= 60_000
        assert refused.retry_after in (56, 57, 58, 59, 60)
        assert await client.zcard(log) == 3  # a refusal is not logged
    # Another client, and the other scope for the same text, are counted apart.
    assert await limits.admit(IP, "192.0.2.2") == Admitted(2)
    assert await limits.admit(CUSTOMER, "192.0.2.1") == Admitted(1)
    # The log lapses one window after its last admitted request.
    assert 55_000 < await client.pttl(log) <= 60_000


async def test_the_window_slides_with_each_request_instead_of_resetting(
    client: RedisClient, keyspace: KeySpace
) -> None:
    """Driven through the log: requests admitted at chosen instants of Redis's clock."""
    limits = limiter(client, keyspace, 3, 60)
    log = keyspace.rate_log(IP, subject_digest("198.51.100.7"))
    now = await redis_ms(client)
    # Three requests, the oldest 50 s ago: full until it leaves, in about 10 s (not in 60 s,
    # as a window that restarts would say, nor at once, as a fixed window at its boundary).
    await client.zadd(log, {"a": now - 50_000, "b": now - 1_000, "c": now})
    refused = await limits.admit(IP, "198.51.100.7")
    assert isinstance(refused, Limited)
    assert 9_000 < refused.retry_after_ms <= 10_000
    assert refused.retry_after == 10
    # Once it has left, exactly one more is admitted: the other two are still in the window.
    await client.zadd(log, {"a": now - 60_000})
    assert await limits.admit(IP, "198.51.100.7") == Admitted(0)
    assert isinstance(await limits.admit(IP, "198.51.100.7"), Limited)
    assert await client.zcard(log) == 3
    # A log longer than the limit (it was lowered since): the wait is until enough have left.
    await client.zadd(log, {f"old-{i}": now - 30_000 + i for i in range(5)})
    refused = await limits.admit(IP, "198.51.100.7")
    assert isinstance(refused, Limited)
    assert 1 <= refused.retry_after_ms <= 60_000


async def test_after_the_window_the_client_is_admitted_again(
    client: RedisClient, keyspace: KeySpace
) -> None:
    limits = limiter(client, keyspace, 2, 60)
    assert isinstance(await limits.admit(IP, "192.0.2.9"), Admitted)
    assert isinstance(await limits.admit(IP, "192.0.2.9"), Admitted)
    assert isinstance(await limits.admit(IP, "192.0.2.9"), Limited)
    # The window passes: its requests are moved a window back in the log, as a minute would
    # move them (with a window of 0.2 s waited for, a busy machine could let it pass before
    # the refusal above).
    log = keyspace.rate_log(IP, subject_digest("192.0.2.9"))
    logged: list[Any] = await client.zrange(log, 0, -1, withscores=True)
    await client.zadd(log, {member: at - 60_000 for member, at in logged})
    assert isinstance(await limits.admit(IP, "192.0.2.9"), Admitted)
    # Retry-After is in whole seconds, at least 1.
    assert [Limited(ms).retry_after for ms in (1, 200, 1000, 1001)] == [1, 1, 1, 2]


async def test_a_limit_of_zero_or_a_window_of_zero_is_off(
    client: RedisClient, keyspace: KeySpace
) -> None:
    for off in (RateLimit(0, 60), RateLimit(5, 0)):
        limits = RateLimiter(client, keys=keyspace, per_ip=off, per_customer=off)
        assert not limits.on(IP)
        assert not limits.on(CUSTOMER)
        for _ in range(10):
            await limits.check(IP, "192.0.2.1")
            await limits.check(CUSTOMER, "cus_1")
    assert [key async for key in client.scan_iter(match=keyspace.pattern())] == []


async def test_the_largest_limit_works_and_a_larger_one_is_refused(
    client: RedisClient, keyspace: KeySpace
) -> None:
    """10^12 requests in 10^12 s (10^15 ms) is what the script takes; more is refused when
    the limit is made, and a limit that got past that is a server error, not a 429 or 503."""
    largest = RateLimit(MAX_REQUESTS, MAX_WINDOW_SECONDS)
    limits = RateLimiter(client, keys=keyspace, per_ip=largest)
    assert await limits.admit(IP, "192.0.2.1") == Admitted(MAX_REQUESTS - 1)
    log = keyspace.rate_log(IP, subject_digest("192.0.2.1"))
    assert await client.pttl(log) > 10**14
    for requests, seconds in [
        (MAX_REQUESTS + 1, 60),
        (5, MAX_WINDOW_SECONDS * 1.01),
        (-1, 60),
        (5, -1),
        (5, math.inf),
        (5, math.nan),
    ]:
        with pytest.raises(ValueError, match="rate limit takes"):
            RateLimit(requests, seconds)
    beyond = RateLimit(5, 60)
    object.__setattr__(beyond, "requests", MAX_REQUESTS + 1)  # as a bug past the check would
    limits = RateLimiter(client, keys=keyspace, per_customer=beyond)
    with pytest.raises(errors.ReservationError) as refused:
        await limits.check(CUSTOMER, "cus_1")
    assert (refused.value.status_code, refused.value.details["argument"]) == (500, "limit")
    assert await client.exists(keyspace.rate_log(CUSTOMER, subject_digest("cus_1"))) == 0


# -- the client's address ---------------------------------------------------------------------


def request_from(peer: str | None, *headers: tuple[str, str]) -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/v1/reservations",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
        "client": None if peer is None else (peer, 40000),
    }
    return Request(scope)


XFF = "X-Forwarded-For"


@pytest.mark.parametrize(
    ("header", "peer", "sent", "counted"),
    [
        # Not configured: whatever a client sends is ignored.
        (None, "203.0.113.5", [(XFF, "192.0.2.1")], "203.0.113.5"),
        (None, "203.0.113.5", [("X-Real-IP", "192.0.2.1")], "203.0.113.5"),
        # X-Forwarded-For: the right-most entry, the one the trusted proxy appended.
        (XFF, "10.0.0.1", [(XFF, "192.0.2.1")], "192.0.2.1"),
        (XFF, "10.0.0.1", [(XFF, "6.6.6.6, 7.7.7.7,192.0.2.1")], "192.0.2.1"),
        (XFF, "10.0.0.1", [(XFF, "6.6.6.6"), (XFF, "192.0.2.1")], "192.0.2.1"),
        (XFF.lower(), "10.0.0.1", [(XFF, "192.0.2.1")], "192.0.2.1"),
        (XFF, "10.0.0.1", [(XFF, "192.0.2.1:4711")], "192.0.2.1"),
        (XFF, "10.0.0.1", [(XFF, "[2001:db8:1:2::7]:4711")], "2001:db8:1:2::/64"),
        # Not an address: the proxy did not write it; the peer counts (no fresh identity).
        (XFF, "10.0.0.1", [(XFF, "192.0.2.1, unknown")], "10.0.0.1"),
        (XFF, "10.0.0.1", [(XFF, "")], "10.0.0.1"),
        (XFF, "10.0.0.1", [], "10.0.0.1"),
        # A single-value header, and RFC 7239's Forwarded.
        ("X-Real-IP", "10.0.0.1", [("X-Real-IP", "192.0.2.1"), (XFF, "6.6.6.6")], "192.0.2.1"),
        (
            "Forwarded",
            "10.0.0.1",
            [("Forwarded", 'for=6.6.6.6, for="[2001:db8::1]:80";proto=https')],
            "2001:db8::/64",
        ),
        ("Forwarded", "10.0.0.1", [("Forwarded", "for=192.0.2.1;proto=https")], "192.0.2.1"),
        # One spelling per client: IPv6 by its /64, IPv4-mapped as IPv4.
        (None, "2001:db8:1:2:aaaa::1", [], "2001:db8:1:2::/64"),
        (None, "::ffff:192.0.2.1", [], "192.0.2.1"),
        (None, None, [], "unknown"),
    ],
)
def test_the_client_address_is_the_peer_or_the_trusted_proxys_entry(
    header: str | None, peer: str | None, sent: list[tuple[str, str]], counted: str
) -> None:
    assert client_address(request_from(peer, *sent), header) == counted


# -- the API -----------------------------------------------------------------------------------


def client_at(api: Api, address: str) -> httpx.AsyncClient:
    """Another HTTP client of the same app, connecting from `address`."""
    transport = httpx.ASGITransport(app=api.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def reserve_body(customer_id: str | None = None, sku: str = "tee") -> dict[str, Any]:
    body: dict[str, Any] = {"items": [{"sku": sku, "quantity": 1}]}
    if customer_id is not None:
        body["customer_id"] = customer_id
    return body


async def state_of(api: Api) -> dict[bytes, bytes | None]:
    """Every key of the service but the rate logs, dumped: what a refusal must not change."""
    redis = api.services.redis
    rate = f"{api.services.settings.key_prefix}:rate:".encode()
    found = [key async for key in redis.scan_iter(match=f"{api.services.settings.key_prefix}:*")]
    keys = sorted(key for key in found if not key.startswith(rate))
    return {key: await redis.dump(key) for key in keys}


def assert_rate_limited(response: httpx.Response, scope: str, limit: int) -> int:
    assert response.status_code == 429, response.text
    answer = response.json()
    assert answer["error"] == "rate_limited"
    assert answer["details"]["scope"] == scope
    assert answer["details"]["limit"] == limit
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


async def test_reservations_past_the_limit_per_address_answer_429_and_hold_nothing(
    make_api: MakeApi,
) -> None:
    api = await make_api(ip_rate_limit=3, ip_rate_window_seconds=60)
    assert (await api.put_product("tee", 10)).status_code == 200
    for _ in range(3):
        assert (await api.reserve(("tee", 1))).status_code == 201
    before = await state_of(api)
    refused = await api.reserve(("tee", 1), customer_id="cus_new")
    retry_after = assert_rate_limited(refused, "ip", 3)
    assert 55 <= retry_after <= 60
    assert refused.json()["details"]["window_seconds"] == 60
    # Bad input is answered from the body alone, before anything is counted or held.
    bad = await api.http.post("/v1/reservations", content=b"{", headers=JSON)
    assert bad.status_code == 422
    assert await state_of(api) == before  # no hold, no counter, no idempotency key
    log = api.services.rate_limiter.keys.rate_log("ip", subject_digest("127.0.0.1"))
    assert await api.services.redis.zcard(log) == 3  # and the refusals were not counted
    product = (await api.http.get("/v1/products/tee")).json()
    assert product["reserved"] == 3
    # Another address is counted apart; reads are not limited.
    async with client_at(api, "198.51.100.20") as other:
        assert (await other.post("/v1/reservations", json=reserve_body())).status_code == 201
    assert (await api.http.get("/v1/products/tee")).status_code == 200
    metrics = api.services.metrics
    assert metrics.sample("reservation_reservations_total", outcome="rate_limited") == 1


async def test_a_refusal_from_the_sold_out_memory_is_not_counted(make_api: MakeApi) -> None:
    """The process remembers that a SKU is sold out: its refusals of that SKU hold nothing,
    ask Stripe nothing and ask Redis nothing, so they are not counted against the limits."""
    api = await make_api(ip_rate_limit=3, customer_rate_limit=2, sold_out_cache_seconds=60)
    assert (await api.put_product("gone", 0)).status_code == 200
    assert (await api.put_product("tee", 10)).status_code == 200
    # The first refusal comes from Redis, and counts (for the address and the customer).
    first = await api.reserve(("gone", 1), customer_id="cus_1")
    assert first.json()["error"] == "insufficient_stock"
    log = api.services.rate_limiter.keys.rate_log("ip", subject_digest("127.0.0.1"))
    assert await api.services.redis.zcard(log) == 1
    before = await state_of(api)
    # Then the memory answers, however many ask, with a new Idempotency-Key or none.
    for n in range(10):
        headers = {"Idempotency-Key": f"key-{n}"} if n % 2 else {}
        body = {"items": [{"sku": "gone", "quantity": 1}], "customer_id": "cus_1"}
        again = await api.http.post("/v1/reservations", json=body, headers=headers)
        assert again.status_code == 409
        assert again.json()["error"] == "insufficient_stock"
    assert await state_of(api) == before
    assert await api.services.redis.zcard(log) == 1
    # What reaches Redis counts as before: the customer's second request, the address' third.
    assert (await api.reserve(("tee", 1), customer_id="cus_1")).status_code == 201
    assert (await api.reserve(("tee", 1))).status_code == 201
    assert_rate_limited(await api.reserve(("tee", 1), customer_id="cus_2"), "ip", 3)
    metrics = api.services.metrics
    assert metrics.sample("reservation_reservations_total", outcome="insufficient_stock") == 11


async def test_the_limit_per_customer_counts_reservations_and_their_checkouts(
    make_shop: MakeShop,
) -> None:
    shop = await make_shop(customer_rate_limit=3, customer_rate_window_seconds=60)
    assert (await shop.api.put_product("tee", 10)).status_code == 200
    held = await shop.api.reserve(("tee", 1), customer_id="cus_1")
    assert held.status_code == 201
    # A checkout of the reservation counts for its customer, a cart's for the cart's.
    session = await shop.checkout(reservation_id=held.json()["id"])
    assert session.status_code == 201, session.text
    assert (await shop.checkout(("tee", 1), customer_id="cus_1")).status_code == 201
    stripe_calls = len(shop.sim.requests("POST", "/v1/checkout/sessions"))
    before = await state_of(shop.api)
    assert_rate_limited(await shop.api.reserve(("tee", 1), customer_id="cus_1"), "customer", 3)
    assert_rate_limited(await shop.checkout(("tee", 1), customer_id="cus_1"), "customer", 3)
    # Asking again for the session of a reservation is a request of its customer too.
    again = await shop.checkout(reservation_id=held.json()["id"])
    assert_rate_limited(again, "customer", 3)
    assert await state_of(shop.api) == before
    assert len(shop.sim.requests("POST", "/v1/checkout/sessions")) == stripe_calls
    # Other customers, and carts without one, are not limited by it.
    assert (await shop.api.reserve(("tee", 1), customer_id="cus_2")).status_code == 201
    assert (await shop.api.reserve(("tee", 1))).status_code == 201
    metrics = shop.api.services.metrics
    assert metrics.sample("reservation_checkouts_total", outcome="rate_limited") == 2


async def test_a_checkout_past_the_limit_per_address_asks_stripe_nothing(
    make_shop: MakeShop,
) -> None:
    shop = await make_shop(ip_rate_limit=2, ip_rate_window_seconds=60)
    assert (await shop.api.put_product("tee", 10)).status_code == 200
    assert (await shop.checkout(("tee", 1))).status_code == 201
    assert (await shop.api.reserve(("tee", 1))).status_code == 201
    before = await state_of(shop.api)
    assert_rate_limited(await shop.checkout(("tee", 1)), "ip", 2)
    assert await state_of(shop.api) == before
    assert len(shop.sim.requests("POST", "/v1/checkout/sessions")) == 1


async def test_a_forwarding_header_is_ignored_unless_configured(make_api: MakeApi) -> None:
    api = await make_api(ip_rate_limit=2, ip_rate_window_seconds=60)
    assert (await api.put_product("tee", 50)).status_code == 200
    # A client cannot become someone new by sending the header.
    for address in ("192.0.2.1", "192.0.2.2"):
        answer = await api.http.post(
            "/v1/reservations", json=reserve_body(), headers={XFF: address}
        )
        assert answer.status_code == 201
    spoofed = await api.http.post("/v1/reservations", json=reserve_body(), headers={XFF: "1.2.3.4"})
    assert_rate_limited(spoofed, "ip", 2)


async def test_behind_a_trusted_proxy_the_right_most_entry_is_the_client(
    make_api: MakeApi,
) -> None:
    api = await make_api(ip_rate_limit=2, ip_rate_window_seconds=60, trusted_proxy_header=XFF)
    assert (await api.put_product("tee", 50)).status_code == 200

    async def from_proxy(forwarded: str) -> int:
        answer = await api.http.post(
            "/v1/reservations", json=reserve_body(), headers={XFF: forwarded}
        )
        return answer.status_code

    # Everything left of the proxy's own entry is the client's to write, and changes nothing.
    assert await from_proxy("6.6.6.6, 192.0.2.1") == 201
    assert await from_proxy("7.7.7.7, 192.0.2.1") == 201
    assert await from_proxy("8.8.8.8, 192.0.2.1") == 429
    # Another buyer behind the same proxy (the same peer) has a limit of their own.
    assert await from_proxy("192.0.2.1, 192.0.2.50") == 201
    # A request that did not come through the proxy counts under its peer's address.
    assert (await api.reserve(("tee", 1))).status_code == 201


async def test_two_apps_on_one_redis_share_the_limits(make_api: MakeApi) -> None:
    """Two processes of the service, as far as Redis can tell: two apps, two connection pools."""
    first = await make_api(ip_rate_limit=4, customer_rate_limit=2)
    second = await make_api(ip_rate_limit=4, customer_rate_limit=2)
    assert (await first.put_product("tee", 50)).status_code == 200
    assert (await first.reserve(("tee", 1), customer_id="cus_1")).status_code == 201
    assert (await second.reserve(("tee", 1), customer_id="cus_1")).status_code == 201
    assert_rate_limited(await first.reserve(("tee", 1), customer_id="cus_1"), "customer", 2)
    # The address is checked first: the request its customer's limit refused still counted
    # for the address, the fourth request of it.
    assert (await second.reserve(("tee", 1))).status_code == 201
    assert_rate_limited(await first.reserve(("tee", 1)), "ip", 4)
    assert_rate_limited(await second.reserve(("tee", 1)), "ip", 4)


async def test_with_the_limits_off_nothing_is_counted(make_api: MakeApi) -> None:
    api = await make_api(
        ip_rate_limit=0,
        customer_rate_limit=5,
        customer_rate_window_seconds=0,
        max_holds_per_customer=0,
    )
    assert (await api.put_product("tee", 50)).status_code == 200
    for _ in range(12):
        assert (await api.reserve(("tee", 1), customer_id="cus_1")).status_code == 201
    redis = api.services.redis
    prefix = api.services.settings.key_prefix
    assert [key async for key in redis.scan_iter(match=f"{prefix}:rate:*")] == []
