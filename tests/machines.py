"""The base of the stateful (hypothesis) tests of the core: a machine with its own event loop,
a Redis client of its kind (real Redis here; a subclass may give fakeredis) and a key space of
its own, deleted when the machine is torn down."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import TypeVar

from hypothesis.stateful import RuleBasedStateMachine
from redis.asyncio import Redis

from reservation.core.keys import KeySpace
from tests.conftest import REDIS_URL

T = TypeVar("T")


class RedisMachine(RuleBasedStateMachine):
    """Run coroutines with `run`; `keys` is this machine's own key space."""

    prefix = "machine"

    def make_client(self) -> Redis:
        return Redis.from_url(REDIS_URL)

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.client = self.make_client()
        self.keys = KeySpace(f"{self.prefix}-{uuid.uuid4().hex[:12]}")

    def run(self, awaitable: Awaitable[T]) -> T:
        async def resolve() -> T:
            return await awaitable

        return self.loop.run_until_complete(resolve())

    def teardown(self) -> None:
        async def clean() -> None:
            async for key in self.client.scan_iter(match=self.keys.pattern()):
                await self.client.delete(key)
            await self.client.aclose()

        self.run(clean())
        self.loop.close()
