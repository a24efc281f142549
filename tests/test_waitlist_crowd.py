"""The waiting list under a crowd (issue 26): 1,000 customers in line and a public crowd
reserving concurrently while 100 units come back at random moments (given back, or lapsing
and reclaimed): every unit goes to the line, in its order, none to the crowd. Real Redis."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from domain.outcomes import Held, OutOfStock
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace
from tests.conftest import REDIS_URL, age_hold

IN_LINE = 1000
UNITS = 100
CROWD = 20


@pytest.fixture
async def inventory() -> AsyncIterator[Inventory]:
    client = Redis.from_url(REDIS_URL, max_connections=2000)
    keys = KeySpace(f"crowd-{uuid.uuid4().hex[:12]}")
    try:
        yield Inventory(client, keys=keys, reclaim_batch=1000)
    finally:
        async for key in client.scan_iter(match=keys.pattern(), count=1000):
            await client.delete(key)
        await client.aclose()


async def test_every_unit_that_comes_back_goes_to_the_line_in_order(
    inventory: Inventory,
) -> None:
    await inventory.stock.set_stock(
        "drop", UNITS, entry='{"name":"Drop","price":1,"currency":"eur"}'
    )
    first_buyers = []
    for n in range(UNITS):
        held = await inventory.holds.reserve([("drop", 1)], customer_id=f"first-{n}")
        assert isinstance(held, Held)
        first_buyers.append(held.reservation.id)
    # 1,000 join at once: their places are what the joins answered.
    joins = await asyncio.gather(
        *(inventory.waitlists.join("drop", f"waiter-{n}", 1) for n in range(IN_LINE))
    )
    by_place = sorted(joins, key=lambda entry: entry.position)
    assert [entry.position for entry in by_place] == list(range(1, IN_LINE + 1))

    crowd_held: list[str] = []
    attempts = [0]
    done = asyncio.Event()

    async def crowd_buyer(n: int) -> None:
        while not done.is_set():
            outcome = await inventory.holds.reserve([("drop", 1)], customer_id=f"bot-{n}")
            attempts[0] += 1
            if isinstance(outcome, Held):
                crowd_held.append(outcome.reservation.id)
            else:
                assert isinstance(outcome, OutOfStock), outcome
            await asyncio.sleep(0)

    async def units_come_back() -> None:
        rng = random.Random(26)
        for reservation_id in rng.sample(first_buyers, len(first_buyers)):
            await asyncio.sleep(rng.uniform(0, 0.005))
            if rng.random() < 0.5:
                await inventory.holds.release(reservation_id)
            else:  # it lapses; the next script to look reclaims it
                await age_hold(inventory.client, inventory.keys, reservation_id)
        await inventory.holds.reclaim("default")
        done.set()

    await asyncio.gather(units_come_back(), *(crowd_buyer(n) for n in range(CROWD)))

    assert attempts[0] >= CROWD  # every bot tried while the units came back
    assert crowd_held == []
    entries = await asyncio.gather(
        *(inventory.waitlists.read("drop", entry.customer_id) for entry in by_place)
    )
    statuses = [entry.status for entry in entries]
    assert statuses == ["offered"] * UNITS + ["waiting"] * (IN_LINE - UNITS)
    offers = {entry.offer.reservation_id for entry in entries if entry.offer is not None}
    assert len(offers) == UNITS  # one offer a unit, never the same unit twice
    level = await inventory.stock.level("drop")
    assert (level.reserved, level.sold, level.waiting, level.available) == (
        UNITS,
        0,
        IN_LINE - UNITS,
        0,
    )
    line = await inventory.waitlists.line("drop", shown=1)
    assert (line.offers, line.line[0].customer_id) == (UNITS, by_place[UNITS].customer_id)
