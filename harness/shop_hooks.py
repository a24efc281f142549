"""A shop's receiver of the service's webhooks (`waitlist.offer_created`, `.offer_lapsed`):
verifies each delivery's `Reservation-Signature`, takes each event once (by its id), and keeps
what came in order. The tests, the load tests and the demo's shop backend mount it:

    hooks = ShopHooks(secret)
    app = Starlette(routes=[hooks.route("/hooks")])

`verify_signature` is the check a shop writes (docs/api.md, *Shop webhooks*).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SIGNATURE_HEADER = "Reservation-Signature"
TOLERANCE_SECONDS = 300


def verify_signature(
    secret: str, header: str | None, body: bytes, tolerance: float, now: float | None = None
) -> bool:
    """Whether `header` (`t=<unix seconds>,v1=<hex>[,v1=<hex>...]`) signs `body` with `secret`
    (HMAC-SHA256 of `"<t>." + body`), at a `t` within `tolerance` seconds of now."""
    if not header:
        return False
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return any(hmac.compare_digest(expected.hexdigest(), given) for given in signatures)


@dataclass
class ShopHooks:
    """The receiver and what it saw. Its state is read from other threads (a test serving it
    with uvicorn in a thread): one lock guards it."""

    secret: str
    tolerance: float = TOLERANCE_SECONDS
    # What to answer a valid delivery: 200, or a test's 500 while the shop is "down".
    status: int = 200
    # Set: the next delivery is held open until `release` is set, then answered 500 and not
    # taken, as by a shop whose process died mid-request (`held` is set once it arrived).
    hold_next: bool = False
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    arrivals: list[str] = field(default_factory=list)  # every valid delivery's event id
    events: list[dict[str, Any]] = field(default_factory=list)  # each event once, as taken
    refused: int = 0  # deliveries whose signature did not verify
    lock: threading.Lock = field(default_factory=threading.Lock)
    _taken: set[str] = field(default_factory=set)

    def route(self, path: str = "/hooks") -> Route:
        return Route(path, self.receive, methods=["POST"])

    def app(self, path: str = "/hooks") -> Starlette:
        return Starlette(routes=[self.route(path)])

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        if not verify_signature(
            self.secret, request.headers.get(SIGNATURE_HEADER), body, self.tolerance
        ):
            with self.lock:
                self.refused += 1
            return JSONResponse({"error": "invalid_signature"}, status_code=400)
        event = json.loads(body)
        with self.lock:
            self.arrivals.append(event["id"])
            hold, self.hold_next = self.hold_next, False
            status = self.status
        if hold:
            self.held.set()
            await anyio.to_thread.run_sync(self.release.wait)
            return JSONResponse({"error": "shop_died"}, status_code=500)
        if status >= 300:
            return JSONResponse({"error": "shop_down"}, status_code=status)
        self.take(event)
        return JSONResponse({"received": True})

    def take(self, event: dict[str, Any]) -> None:
        """Keep an event unless its id was taken already (a redelivery)."""
        with self.lock:
            if event["id"] not in self._taken:
                self._taken.add(event["id"])
                self.events.append(event)

    def taken_ids(self) -> list[str]:
        with self.lock:
            return [event["id"] for event in self.events]

    def arrived(self) -> list[str]:
        with self.lock:
            return list(self.arrivals)
