"""Redis restarted empty: the service notices and rebuilds its counters from MongoDB by itself.

Each test runs a redis-server of its own (killed, restarted, flushed), never the shared one,
and the HTTP app in-process on it with real nx-27017.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from domain import errors
from domain.outcomes import CommittedLate
from domain.statuses import OrderStatus
from harness import servers
from harness.servers import RedisServer
from persistence.orders import Order, OrderLine
from tests.api import Api, MakeApi

pytestmark = pytest.mark.skipif(servers.REDIS_SERVER is None, reason="needs redis-server")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (no AOF: a restart brings it back empty)."""
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


async def test_redis_restarted_with_its_data_or_its_scripts_flushed_fails_no_request(
    tmp_path: Path, make_api: MakeApi
) -> None:
    durable = RedisServer(tmp_path / "aof", "--appendonly", "yes", "--appendfsync", "always")
    durable.start()
    try:
        api = await make_api(redis_url=durable.url, rebuild_check_seconds=0.1)
        assert (await api.put_product("tee", 5)).status_code == 200
        assert (await api.reserve(("tee", 1))).status_code == 201

        durable.restart()  # the AOF brings everything back
        # The pooled connections died with the old server: they are opened again, unseen.
        assert (await api.reserve(("tee", 1))).status_code == 201
        await api.services.redis.function_flush()
        # "Function not found": the library is loaded again and the call served.
        assert (await api.reserve(("tee", 1))).status_code == 201
        tee = await product(api, "tee")
        assert (tee["reserved"], tee["available"]) == (3, 2)
        assert api.services.recovery.rebuilds == 0  # nothing was lost, nothing rebuilt
    finally:
        durable.stop()


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


async def rebuilt(api: Api) -> None:
    """Wait until the service rebuilt what Redis lost (its marker is back)."""

    async def marked() -> bool:
        try:
            return not await api.services.recovery.lost()
        except Exception:  # Redis still starting
            return False

    await eventually(marked)


async def sell(api: Api, sku: str, session: str) -> str:
    """One unit held, paid and committed as the webhook does: the order first, then Redis."""
    held = await api.reserve((sku, 1))
    assert held.status_code == 201, held.text
    reservation_id: str = held.json()["id"]
    await api.services.orders.upsert(
        Order(
            checkout_session_id=session,
            reservation_id=reservation_id,
            status=OrderStatus.PAID,
            items=(OrderLine(sku, 1, 1500),),
            amount_total=1500,
            currency="eur",
        )
    )
    await api.services.inventory.holds.commit(reservation_id)
    return reservation_id


async def sold_then_lost(own_redis: RedisServer, make_api: MakeApi, sold: int) -> Api:
    """An app whose tee (3 in stock) sold `sold` units, then Redis restarted empty. Its
    periodic check is an hour away: only its requests can notice the loss."""
    api = await make_api(redis_url=own_redis.url, rebuild_check_seconds=3600)
    assert (await api.put_product("tee", 3)).status_code == 200
    for number in range(sold):
        await sell(api, "tee", f"cs_{number}")
    own_redis.restart()
    return api


async def product(api: Api, sku: str) -> dict[str, Any]:
    answer = await api.http.get(f"/v1/products/{sku}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_redis_restarted_empty_is_rebuilt_without_an_operator(
    own_redis: RedisServer, make_api: MakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    api = await make_api(redis_url=own_redis.url, rebuild_check_seconds=0.1)
    assert (await api.put_product("tee", 5)).status_code == 200
    await sell(api, "tee", "cs_sold")
    lost_hold = (await api.reserve(("tee", 1))).json()["id"]  # in flight when Redis dies

    own_redis.stop()
    down = await api.reserve(("tee", 1))
    assert down.status_code == 503
    assert down.json()["error"] == "storage_unavailable"
    assert down.headers["Retry-After"] == "1"
    # Readiness follows Redis, which the hot path needs: 503 (MongoDB answers); alive still.
    unready = await api.http.get("/readyz")
    assert unready.status_code == 503
    assert unready.json()["error"] == "storage_unavailable"
    assert unready.json()["details"] == {"redis": "down", "mongodb": "ok"}
    assert (await api.http.get("/healthz")).status_code == 200

    own_redis.restart()
    await rebuilt(api)
    # The paid unit stays sold; the lost hold's unit is on sale again.
    tee = await product(api, "tee")
    assert (tee["sold"], tee["reserved"], tee["available"]) == (1, 0, 4)
    assert (await api.http.get("/readyz")).status_code == 200
    assert "Redis had lost counters: 1 SKUs rebuilt from MongoDB" in caplog.text

    # Not one unit is sold twice: 4 are left, and a fifth is refused.
    for _ in range(4):
        assert (await api.reserve(("tee", 1))).status_code == 201
    refused = await api.reserve(("tee", 1))
    assert refused.status_code == 409
    assert refused.json()["error"] == "insufficient_stock"

    # The session of the lost hold pays now: the late-payment path, and no unit is free.
    late = await api.services.inventory.holds.commit(lost_hold, items=[("tee", 1)])
    assert not isinstance(late, CommittedLate)
    assert (await product(api, "tee"))["sold"] == 1


async def test_a_request_that_finds_counters_lost_starts_the_rebuild(
    own_redis: RedisServer, make_api: MakeApi
) -> None:
    api = await sold_then_lost(own_redis, make_api, sold=1)
    api.services.inventory.pools.forget()  # a process that never served the SKU before
    noticed = await api.reserve(("tee", 1))
    assert noticed.status_code == 503, noticed.text
    assert noticed.json()["error"] == "storage_unavailable"
    assert "being rebuilt" in noticed.json()["message"]

    async def held() -> bool:
        return (await api.reserve(("tee", 1))).status_code == 201

    await eventually(held)
    tee = await product(api, "tee")
    assert (tee["sold"], tee["reserved"]) == (1, 1)
    # A SKU nobody ever stocked is still a plain 404 once Redis has its counters back.
    unknown = await api.reserve(("nope", 1))
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "unknown_sku"


async def test_a_payment_while_redis_is_empty_is_retried_then_counted_once(
    own_redis: RedisServer, make_api: MakeApi
) -> None:
    api = await make_api(redis_url=own_redis.url, rebuild_check_seconds=3600)
    assert (await api.put_product("tee", 2)).status_code == 200
    held = (await api.reserve(("tee", 1))).json()["id"]

    own_redis.restart()
    inventory = api.services.inventory
    # The payment's webhook finds no counters: 503 (Stripe delivers again), rebuild started.
    with pytest.raises(errors.StorageUnavailable, match="being rebuilt"):
        await inventory.holds.commit(held, items=[("tee", 1)])

    async def committed() -> bool:
        try:
            outcome = await inventory.holds.commit(held, items=[("tee", 1)])
        except errors.StorageUnavailable:
            return False
        return isinstance(outcome, CommittedLate)

    await eventually(committed)
    tee = await product(api, "tee")
    assert (tee["sold"], tee["available"]) == (1, 1)


async def test_a_put_of_a_sold_product_never_starts_its_counters_from_zero(
    own_redis: RedisServer, make_api: MakeApi
) -> None:
    api = await sold_then_lost(own_redis, make_api, sold=2)
    answer = await api.put_product("tee", 4)
    # Redis lost what was sold: the PUT waits for the rebuild rather than selling it again.
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "storage_unavailable"

    async def put_again() -> bool:
        return (await api.put_product("tee", 4)).status_code == 200

    await eventually(put_again)
    tee = await product(api, "tee")
    assert (tee["stock"], tee["sold"], tee["available"]) == (4, 2, 2)


async def test_processes_rebuilding_at_once_rebuild_once(
    own_redis: RedisServer, make_api: MakeApi
) -> None:
    first = await make_api(redis_url=own_redis.url, rebuild_check_seconds=0)
    second = await make_api(redis_url=own_redis.url, rebuild_check_seconds=0)
    for sku in ("tee", "cap", "mug"):
        assert (await first.put_product(sku, 5)).status_code == 200
    await sell(first, "tee", "cs_1")

    own_redis.restart()
    assert await first.services.recovery.lost()
    counts = await asyncio.gather(
        first.services.recovery.rebuild(), second.services.recovery.rebuild()
    )
    assert sorted(counts) == [0, 3]  # one process rebuilt, the other waited for it
    assert not await second.services.recovery.lost()
    tee = await product(second, "tee")
    assert (tee["stock"], tee["sold"]) == (5, 1)
    # Nothing was lost the second time round: the check finds the marker and does nothing.
    assert await first.services.recovery.ensure() == 0


async def test_a_known_sku_is_never_unknown_while_redis_restarts_empty(
    own_redis: RedisServer, make_api: MakeApi
) -> None:
    workers = [await make_api(redis_url=own_redis.url, rebuild_check_seconds=0.2) for _ in range(2)]
    assert (await workers[0].put_product("tee", 30)).status_code == 200
    answers: list[int] = []
    stop = asyncio.Event()

    async def buyer(api: Api) -> None:
        # As the crowd does: a key per attempt, a customer id, sold out soon (409).
        while not stop.is_set():
            answer = await api.http.post(
                "/v1/reservations",
                json={"items": [{"sku": "tee", "quantity": 1}], "customer_id": uuid.uuid4().hex},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            answers.append(answer.status_code)
            await asyncio.sleep(0.001)

    buyers = [asyncio.create_task(buyer(api)) for api in workers for _ in range(4)]
    await asyncio.sleep(0.3)
    await asyncio.to_thread(own_redis.stop)
    await asyncio.sleep(0.5)
    await asyncio.to_thread(own_redis.restart)
    await asyncio.sleep(1.5)
    stop.set()
    await asyncio.gather(*buyers)
    assert 503 in answers
    assert set(answers) <= {201, 409, 503}, sorted(set(answers))
    assert answers[-1] in (201, 409)
