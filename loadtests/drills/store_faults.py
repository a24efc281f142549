"""The stores' faults: Redis lost (restarted empty), Redis restarted with its data and its
functions flushed, MongoDB stopped while webhooks arrive."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from loadtests.drills.target import Target, Timings, first_answer_after


def outage(
    stop: Callable[[], None], start: Callable[[], object], seconds: float
) -> tuple[float, float]:
    """Stop a store, keep it down `seconds`, start it again: when it went down and came back."""
    began = time.monotonic()
    stop()
    time.sleep(seconds)
    start()
    return began, time.monotonic()


def redis_lost(target: Target) -> Timings:
    """Kill Redis, keep it down 3 s, start it again empty; (fault start, end, recovered)."""
    redis_server = target.stores.redis
    began, back = outage(redis_server.stop, redis_server.start, 3)
    return began, back, first_answer_after(target.probe, back, ok=(201, 409))


def redis_restart(target: Target) -> Timings:
    """Restart Redis with its data (AOF), then flush its functions (the scripts' library)."""
    began = time.monotonic()
    target.stores.redis.restart()  # SIGTERM: the AOF is complete
    time.sleep(2)
    client = redis.Redis.from_url(target.stores.redis.url)
    try:
        client.function_flush()
    finally:
        client.close()
    end = time.monotonic()
    return began, end, first_answer_after(target.probe, began, ok=(201, 409))


def mongodb_stopped(target: Target) -> Timings:
    """Stop MongoDB for 5 s while webhooks arrive, then start it again (same data)."""
    mongo = target.stores.mongo
    began, back = outage(mongo.stop, mongo.start, 5)
    # What must not stop is the hold: every probe answer during the fault was a hold or a
    # sold-out answer (recovery 0), else the drill did not hold.
    during = target.probe.during(began, back)
    refused = [status for _, status, _ in during if status not in (201, 409)]
    return began, back, None if refused else 0.0
