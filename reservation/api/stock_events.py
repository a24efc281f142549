"""GET /v1/products/{sku}/events: a product's live stock as Server-Sent Events (sse-starlette).

The handler only checks the SKU and subscribes to this process's feed (reservation/api/
stock_feed.py, which reads Redis once per watched SKU whatever the number of streams): an
unknown SKU (404), a full process (503) or Redis down (503) are answered before anything is
streamed. Then each event is the feed's latest value, `event: stock`, `id:` its version; the
first at once, on every connection (a reconnect's `Last-Event-ID` too: what a page needs is the
value now, not the ones it missed).

Once it streams, the request leaves the server's count of requests in flight and its client's
share of them (the `LONG_LIVED` extension the server's protocol offers,
reservation/server/protocol.py): a stream lasts minutes, and 4,096 of them would otherwise turn
every other request into a 503. Streams have their own cap, `RESERVATION_MAX_STREAMS`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from domain.rules import check_name
from reservation.api.services import services
from reservation.api.stock_feed import StockFeed, Subscription

# The ASGI extension under which reservation/server/protocol.py offers a request a way to leave
# the count of requests in flight (`{"leave": callable(scope)}`); absent elsewhere (tests
# in-process, another server), where there is nothing to leave.
LONG_LIVED = "reservation.long_lived"

# A send that waits longer than this for the client to read (its buffers full) ends the
# stream: a client that stopped reading does not keep a stream, and its slot, for ever.
SEND_SECONDS = 30.0

EVENT = "stock"


def stock_frame(version: int, data: bytes) -> bytes:
    """One `stock` event on the wire (encoded once per value, sent to every stream)."""
    return ServerSentEvent(data.decode(), event=EVENT, id=str(version)).encode()


def keep_alive() -> ServerSentEvent:
    return ServerSentEvent(comment="keep-alive")


async def _frames(subscription: Subscription) -> AsyncIterator[bytes]:
    seen = 0
    while True:
        seen, frame = await subscription.after(seen)
        yield frame


class StockStream(EventSourceResponse):
    """The event stream of one subscription, closed however the response ends (the client
    gone, the server shutting down, a send that timed out; a HEAD never streams)."""

    def __init__(self, subscription: Subscription, keep_alive_seconds: float) -> None:
        super().__init__(
            _frames(subscription),
            # no-cache: a proxy or CDN may keep the connection but not the events.
            headers={"Cache-Control": "no-cache"},
            ping=keep_alive_seconds,
            ping_message_factory=keep_alive,
            send_timeout=SEND_SECONDS,
        )
        self.subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        offered = (scope.get("extensions") or {}).get(LONG_LIVED) or {}
        leave: Callable[[Scope], None] | None = offered.get("leave")
        if leave is not None:
            leave(scope)
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.subscription.close()


def stock_feed(request: Request) -> StockFeed:
    feed: StockFeed = request.app.state.stock_feed
    return feed


async def product_events(request: Request) -> Response:
    sku = check_name(request.path_params["sku"], "sku")
    subscription = await stock_feed(request).subscribe(sku)
    return StockStream(subscription, services(request).settings.stream_keepalive_seconds)
