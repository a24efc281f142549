"""The service's background loops (the sweeper, the recovery check): one step every interval,
until cancelled, outliving any one failed step."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from domain.errors import ReservationError, ScriptFailed


async def every(
    interval_seconds: float,
    step: Callable[[], Awaitable[None]],
    *,
    logger: logging.Logger,
    what: str,
    wait_first: bool = False,
) -> None:
    """Run `step` every `interval_seconds` (after one interval first, with `wait_first`).

    A failure a store reports (Redis or MongoDB down) is a warning, logged once while it lasts
    (the same message again is not repeated every interval), with one line when a step works
    again; the next step comes as usual. Anything else is logged with its traceback. A
    cancellation always ends the loop, even one a client library turned into an error on the
    way (redis-py may, while it connects): then the task is still marked as cancelling, and
    the loop stops.
    """
    if wait_first:
        await asyncio.sleep(interval_seconds)
    failing: str | None = None  # the store failure being reported, until a step works
    failed_steps = 0
    while True:
        try:
            await step()
        except ScriptFailed as exc:  # a bug, not a store's outage: never quieted
            logger.error("%s failed: %s", what, exc.script_message, exc_info=exc)
        except ReservationError as exc:
            if exc.message != failing:
                logger.warning("%s failed: %s (not repeated while it lasts)", what, exc.message)
                failing = exc.message
            failed_steps += 1
        except Exception as exc:
            logger.error("%s failed: %s", what, type(exc).__name__, exc_info=exc)
        else:
            if failing is not None:
                logger.warning("%s works again after %d failed steps", what, failed_steps)
            failing, failed_steps = None, 0
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        await asyncio.sleep(interval_seconds)
