"""A waiting list across a Redis loss (issue 26's durability): Redis restarted empty with
buyers in line; the self-rebuild puts back in line, from MongoDB's joins and in join order,
everyone whose join had not ended (left, an offer lapsed, an offer bought), in the same call
that rebuilds the counters, so the units go to the line before any public buyer.

A redis-server of the test's own (restarted empty), the HTTP app in-process, real nx-27017."""

from __future__ import annotations

import pytest

from domain.statuses import OrderStatus
from harness import servers
from harness.servers import RedisServer
from persistence.orders import Order, OrderLine
from tests.api import Api, MakeApi
from tests.conftest import age_hold
from tests.test_recovery import own_redis, product, rebuilt

pytestmark = pytest.mark.skipif(servers.REDIS_SERVER is None, reason="needs redis-server")
__all__ = ["own_redis"]  # the fixture, a redis-server of the test's own


async def join(api: Api, customer: str) -> None:
    joined = await api.http.post("/v1/waitlist/tee", json={"quantity": 1, "customer_id": customer})
    assert joined.status_code == 201, joined.text


async def entry(api: Api, customer: str) -> dict[str, object]:
    found = await api.http.get(f"/v1/waitlist/tee/{customer}")
    assert found.status_code == 200, found.text
    body: dict[str, object] = found.json()
    return body


def offer_of(body: dict[str, object]) -> str:
    offer = body["offer"]
    assert isinstance(offer, dict), body
    reservation_id: str = offer["reservation_id"]
    return reservation_id


async def test_the_line_comes_back_from_mongodb_and_gets_the_units_first(
    own_redis: RedisServer, make_api: MakeApi
) -> None:
    api = await make_api(redis_url=own_redis.url, rebuild_check_seconds=0.1)
    inventory = api.services.inventory
    assert (await api.put_product("tee", 2)).status_code == 200
    crowd = [(await api.reserve(("tee", 1), customer_id=f"c{n}")).json()["id"] for n in range(2)]
    for customer in ("ann", "bob", "cy", "dee", "eve"):
        await join(api, customer)
    await api.http.delete("/v1/waitlist/tee/eve")  # eve leaves: marked left in MongoDB

    await inventory.holds.release(crowd[0])  # offered to ann
    ann_offer = offer_of(await entry(api, "ann"))
    await age_hold(inventory.client, inventory.keys, ann_offer)
    await inventory.holds.reclaim("default")  # ann's offer lapses: bob's turn
    bob_offer = offer_of(await entry(api, "bob"))
    await api.services.orders.upsert(  # bob pays (the webhook's order, then the commit)
        Order(
            checkout_session_id="cs_bob",
            reservation_id=bob_offer,
            status=OrderStatus.PAID,
            items=(OrderLine("tee", 1, 1500),),
            amount_total=1500,
            currency="eur",
            customer_id="bob",
        )
    )
    await inventory.holds.commit(bob_offer)
    assert await api.services.outbox.relay() == 3  # ann offered, lapsed; bob offered
    assert [(await entry(api, c))["status"] for c in ("ann", "bob", "cy", "dee")] == [
        "lapsed",
        "bought",
        "waiting",
        "waiting",
    ]

    own_redis.restart()  # empty: counters, the crowd's other hold and the line are lost
    await rebuilt(api)
    # tee: 2 in stock, bob's sold; the crowd's hold was lost, so one unit is free: cy, first
    # of those still waiting, is offered it; dee waits; ann (lapsed), bob (bought) and eve
    # (left) are not put back.
    cy, dee = await entry(api, "cy"), await entry(api, "dee")
    assert (cy["status"], dee["status"], dee["position"]) == ("offered", "waiting", 1)
    for gone in ("ann", "bob", "eve"):
        missing = await api.http.get(f"/v1/waitlist/tee/{gone}")
        assert missing.status_code == 404, (gone, missing.text)
    tee = await product(api, "tee")
    assert (tee["sold"], tee["reserved"], tee["available"], tee["waitlist"]) == (1, 1, 0, 1)
    refused = await api.reserve(("tee", 1), customer_id="fast-bot")
    assert refused.status_code == 409
    assert refused.json()["error"] == "insufficient_stock"
