"""The middleware timing every HTTP request (the histogram reservation_http_request_seconds)."""

from __future__ import annotations

import time

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reservation.metrics import Metrics

# The request method is the client's to choose: any other becomes "other", so no label grows
# with what clients send.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestTimer:
    """ASGI middleware observing each request's latency under its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # labels() costs a lock and a dict walk per call: keep each child once found.
        self.children: dict[tuple[str, str, int], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = scope.get("route")
            method = scope["method"] if scope["method"] in METHODS else "other"
            key = (method, getattr(route, "path", "unmatched"), status)
            child = self.children.get(key)
            if child is None:
                child = self.children[key] = self.metrics.request_seconds.labels(
                    key[0], key[1], str(status)
                )
            child.observe(time.perf_counter() - started)
