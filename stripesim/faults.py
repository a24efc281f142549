"""Injected failures: the next N matching requests fail the way a real network or API can.

Faults strike before authentication and idempotency, like a load balancer or an outage:
nothing is stored for them, so a retry under the same Idempotency-Key runs for real.
`reset_after` is the exception: the request runs (and is stored), then its answer is lost.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from stripesim.errors import StripeError, invalid

# The modes that answer with a Stripe API error (error_for), and all of them.
ERROR_MODES = ("500", "429", "400", "401", "402")
MODES = (*ERROR_MODES, "hang", "reset", "reset_after", "delay")


@dataclass
class Fault:
    """`path` is exact or a glob (`/v1/checkout/sessions/*/expire`); `method` "*" is any.
    `count` None strikes until cleared. `should_retry` sets Stripe-Should-Retry on 500/429;
    `seconds` is how long hang (default: the settings' hang_seconds) or delay lasts. "400" and
    "402" are permanent refusals (invalid_request_error, card_error) with `code` and `message`;
    "401" is Stripe's answer to a revoked or wrong API key."""

    path: str
    method: str = "POST"
    mode: str = "500"
    count: int | None = 1
    should_retry: bool | None = None
    retry_after: int = 1
    seconds: float | None = None
    code: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        numbers = isinstance(self.count, int | None) and isinstance(
            self.seconds, int | float | None
        )
        if not numbers:
            raise invalid("count and seconds are numbers (or null)")
        if not all(isinstance(text, str | None) for text in (self.code, self.message)):
            raise invalid("code and message are strings (or null)")
        self.method = self.method.upper()
        if self.mode not in MODES:
            raise invalid(f"mode must be one of {', '.join(MODES)}", "mode")
        if self.count is not None and self.count < 1:
            raise invalid("count must be at least 1 (or null: until cleared)", "count")
        if self.mode == "delay" and self.seconds is None:
            raise invalid("a delay needs seconds", "seconds")

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and fnmatchcase(path, self.path)

    def view(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: object) -> Fault:
        fields = set(cls.__dataclass_fields__)
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            raise invalid("a fault is a JSON object with at least a path", "path")
        unknown = set(body) - fields
        if unknown:
            raise invalid(f"unknown fault fields: {', '.join(sorted(unknown))}")
        try:
            return cls(**body)
        except TypeError as exc:
            raise invalid(f"invalid fault: {exc}") from None


class Faults:
    """The pending faults, first added first used; safe to change from any thread."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.view() for fault in self._faults]

    def take(self, method: str, path: str) -> Fault | None:
        """The fault this request meets, if any (using up one of its count)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count == 0:
                            self._faults.remove(fault)
                    return fault
        return None


def error_for(fault: Fault) -> StripeError:
    """The API error a 500, 429, 400, 401 or 402 fault answers with."""
    headers = {}
    if fault.should_retry is not None:
        headers["Stripe-Should-Retry"] = "true" if fault.should_retry else "false"
    if fault.mode in ("400", "402"):
        kind = "invalid_request_error" if fault.mode == "400" else "card_error"
        return StripeError(
            int(fault.mode),
            kind,
            fault.message or "The request was refused (simulated fault).",
            code=fault.code,
            headers=headers,
        )
    if fault.mode == "401":
        return StripeError(
            401,
            "invalid_request_error",
            fault.message or "Invalid API Key provided: sk_test_****",
            headers=headers,
        )
    if fault.mode == "429":
        headers["Retry-After"] = str(fault.retry_after)
        return StripeError(
            429,
            "invalid_request_error",
            "Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
            code="rate_limit",
            headers=headers,
        )
    return StripeError(
        500, "api_error", "An unknown error occurred (simulated fault).", headers=headers
    )


class DroppedConnection(Response):
    """Headers go out, then the connection closes: the client reads a cut-short body."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        # Returning without the body makes the server close the connection.


async def _until_disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def hold(receive: Receive, released: asyncio.Event, seconds: float) -> bool:
    """Wait until the client goes away (True), the sim shuts down, or `seconds` pass."""
    gone = asyncio.ensure_future(_until_disconnected(receive))
    shutdown = asyncio.ensure_future(released.wait())
    try:
        await asyncio.wait({gone, shutdown}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        return gone.done() and not gone.cancelled()
    finally:
        for task in (gone, shutdown):
            task.cancel()
        await asyncio.gather(gone, shutdown, return_exceptions=True)


class HangingResponse(Response):
    """No answer until the client gives up; a 500 if it never does (or the sim stops)."""

    def __init__(self, released: asyncio.Event, seconds: float, after: Response) -> None:
        super().__init__(status_code=500)
        self.released = released
        self.seconds = seconds
        self.after = after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await hold(receive, self.released, self.seconds):
            await self.after(scope, receive, send)
