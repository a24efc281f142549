"""SimState: everything the simulator knows, in memory, safe to drive from any thread."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from stripesim import driver
from stripesim.errors import JsonObject
from stripesim.faults import Fault, Faults
from stripesim.idempotency import IdempotencyKeys
from stripesim.settings import SimSettings
from stripesim.store import Store


class SimState:
    """Objects, events, request log, faults. Reachable as `app.state.sim`.

    The server's handlers and a test's thread share it: every change holds `lock`, and
    events reach the webhook sender through the server's loop, whatever thread made them.
    """

    def __init__(self, settings: SimSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.lock = threading.RLock()
        self.store = Store(settings.api_version, events=deque(maxlen=settings.log_limit))
        self.idempotency = IdempotencyKeys()
        self.faults = Faults()
        self.requests: deque[JsonObject] = deque(maxlen=settings.log_limit)
        self.deliveries: deque[JsonObject] = deque(maxlen=settings.log_limit)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._released: asyncio.Event | None = None
        # The API's latency draws (the webhook sender keeps its own, for its chaos).
        self.random = random.Random(settings.chaos_seed)

    @contextmanager
    def changing(self) -> Iterator[Store]:
        with self.lock:
            yield self.store

    # What tests read.

    @property
    def sessions(self) -> dict[str, JsonObject]:
        return self.store.sessions

    @property
    def payment_intents(self) -> dict[str, JsonObject]:
        return self.store.payment_intents

    @property
    def refunds(self) -> dict[str, JsonObject]:
        return self.store.refunds

    def events(self, type_: str | None = None) -> list[JsonObject]:
        with self.lock:
            return [e for e in self.store.events if type_ is None or e["type"] == type_]

    def logged_requests(
        self, method: str | None = None, path: str | None = None
    ) -> list[JsonObject]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r["method"] == method) and (path is None or r["path"] == path)
            ]

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def record_delivery(self, entry: JsonObject) -> None:
        with self.lock:
            self.deliveries.append(entry)

    # Faults.

    def add_fault(
        self,
        path: str,
        method: str = "POST",
        mode: str = "500",
        count: int | None = 1,
        **options: Any,
    ) -> Fault:
        """Make the next `count` requests to `method path` fail as `mode` says (see Fault)."""
        fault = Fault(path=path, method=method, mode=mode, count=count, **options)
        self.faults.add(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    # The outside world (see driver.py); each returns the event it caused.

    def complete(self, session_id: str, payment_status: str = "paid") -> JsonObject:
        with self.changing() as store:
            return driver.complete(store, session_id, payment_status, self.clock())

    def async_payment(self, session_id: str, succeeded: bool = True) -> JsonObject:
        with self.changing() as store:
            return driver.async_payment(store, session_id, succeeded, self.clock())

    def expire(self, session_id: str) -> JsonObject:
        with self.changing() as store:
            return driver.expire(store, session_id, self.clock())

    def fail_payment(self, intent_id: str) -> JsonObject:
        with self.changing() as store:
            return driver.fail_payment(store, intent_id, self.clock())

    def fail_session_payment(self, session_id: str) -> JsonObject:
        with self.changing() as store:
            return driver.fail_session_payment(store, session_id, self.clock())

    def refund_event(self, intent_id: str, amount: int | None = None) -> JsonObject:
        with self.changing() as store:
            return driver.merchant_refund(store, intent_id, self.clock(), amount)

    def expire_due(self) -> list[JsonObject]:
        with self.changing() as store:
            self.idempotency.forget_expired(self.clock())
            return driver.expire_due(store, self.clock())

    # The server's side.

    def attach(self, on_event: Callable[[JsonObject], None] | None) -> None:
        """Bind to the running loop (at start-up); `on_event` runs on it for each event."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._released = asyncio.Event()
        if on_event is not None:

            def forward(event: JsonObject) -> None:
                loop.call_soon_threadsafe(on_event, event)

            self.store.listeners.append(forward)

    def detach(self) -> None:
        self.store.listeners.clear()
        self._loop = None

    @property
    def released(self) -> asyncio.Event:
        """Set when hanging requests must let go (shutdown)."""
        assert self._released is not None, "the simulator is not running"
        return self._released

    def release_hangs(self) -> None:
        """Let every hanging request go now, from any thread (call before stopping)."""
        if self._loop is not None and self._released is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                self._loop.call_soon_threadsafe(self._released.set)
