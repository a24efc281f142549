"""Redis failures leave the core as StorageUnavailable, never as a raw driver error."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from domain import errors
from harness import servers
from reservation.core.inventory import Inventory


async def test_unreachable_redis_is_storage_unavailable() -> None:
    client = Redis(host="127.0.0.1", port=servers.free_port(), socket_connect_timeout=1)
    inventory = Inventory(client)
    with pytest.raises(errors.StorageUnavailable) as raised:
        await inventory.stock.set_stock("a", 1)
    assert raised.value.status_code == 503
    with pytest.raises(errors.StorageUnavailable):
        await inventory.stock.levels(pool="default")
    with pytest.raises(errors.StorageUnavailable):
        await inventory.holds.get("default.abcdefghijklmnopqrstuv")
    await client.aclose()
