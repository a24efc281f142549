"""Redis failures as the core's error: StorageUnavailable (503, retry), raised from the
driver's error so the log keeps both. A script that raised an error is not one of them: the
library's Scripts.run raises ScriptFailed (500, a bug) before any of these sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import RedisError

from domain import errors


def storage_unavailable(exc: RedisError) -> errors.StorageUnavailable:
    return errors.StorageUnavailable(f"Redis did not answer: {type(exc).__name__}", backend="redis")


@asynccontextmanager
async def storage_errors() -> AsyncIterator[None]:
    """Redis failures leave the core as StorageUnavailable."""
    try:
        yield
    except RedisError as exc:
        raise storage_unavailable(exc) from exc
