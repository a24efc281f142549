"""A short memory of product reads, so a crowd refreshing the product page costs no Redis call.

In a sale everybody refreshes the product page. This process reuses an answer Redis gave for
`seconds`, and concurrent reads of the same thing while it is being fetched share one call.
Every write this process makes to Redis forgets everything, so a process always reads its own
writes (a hold, a release, a PUT); what another process wrote is seen at most `seconds` later.
The answers are only ever read: a reservation is decided by Redis, never by this memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

T = TypeVar("T")


class ReadCache(Generic[T]):
    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self.seconds = seconds
        self._answers: dict[Hashable, tuple[float, T]] = {}
        self._loading: dict[Hashable, asyncio.Future[T]] = {}
        self._generation = 0

    async def get(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        """The answer for `key`: remembered, being fetched by another reader, or fetched now."""
        if not self.seconds:
            return await load()
        found = self._answers.get(key)
        if found is not None and found[0] > time.monotonic():
            return found[1]
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(load())
            self._loading[key] = loading
            loading.add_done_callback(partial(self._loaded, key, self._generation))
        # A reader that goes away (its client hung up) does not cancel the others' fetch.
        return await asyncio.shield(loading)

    def forget(self) -> None:
        """This process wrote to Redis: no answer read before the write is given again."""
        self._answers.clear()
        self._loading.clear()  # fetches in flight may have read before the write
        self._generation += 1

    def _loaded(self, key: Hashable, generation: int, loading: asyncio.Future[T]) -> None:
        if self._loading.get(key) is loading:
            del self._loading[key]
        if loading.cancelled() or loading.exception() is not None:
            return  # errors are answered to the readers waiting, never remembered
        if generation == self._generation:
            self._answers[key] = (time.monotonic() + self.seconds, loading.result())
