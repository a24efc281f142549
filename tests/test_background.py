"""The background loop: a store failure is reported once while it lasts, and its end once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from domain import errors
from reservation.operations.background import every

logger = logging.getLogger("tests.background")


async def test_a_lasting_store_failure_is_logged_once_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[Exception | None] = [
        errors.StorageUnavailable("Redis did not answer", backend="redis"),
        errors.StorageUnavailable("Redis did not answer", backend="redis"),
        errors.StorageUnavailable("Redis did not answer", backend="redis"),
        errors.StorageUnavailable("MongoDB did not answer", backend="mongodb"),
        None,
        errors.StorageUnavailable("Redis did not answer", backend="redis"),
    ]
    done = asyncio.Event()
    steps = 0

    async def step() -> None:
        nonlocal steps
        steps += 1
        if steps >= len(outcomes):
            done.set()
        outcome = outcomes[min(steps, len(outcomes)) - 1]
        if outcome is not None:
            raise outcome

    caplog.set_level(logging.WARNING, logger="tests.background")
    loop = asyncio.create_task(every(0.001, step, logger=logger, what="check"))
    await asyncio.wait_for(done.wait(), 5)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    assert [record.getMessage() for record in caplog.records] == [
        "check failed: Redis did not answer (not repeated while it lasts)",
        "check failed: MongoDB did not answer (not repeated while it lasts)",
        "check works again after 4 failed steps",
        "check failed: Redis did not answer (not repeated while it lasts)",
    ]
