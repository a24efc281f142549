"""What one client connection may take from a worker: the bounds, and the answers past them.

uvicorn bounds the idle time between two requests of a connection (`timeout_keep_alive`), and
nothing else a client controls. Any byte cancels that timer and only an answer arms it again,
so a new connection that never sends, a request line and headers that never end (slowloris),
and a body that trickles or stops (`Content-Length: 1000`, then a byte now and then) each held
a connection for ever; httptools reads a request's headers of any size into memory (2 MB of
them were answered 200); and `limit_concurrency` counts open connections as well as requests,
so a crowd of idle connections would turn every answer into a 503. The service's protocol
(`ClientProtocol`, reservation/server/protocol.py, on `DeadlineProtocol`,
reservation/server/deadlines.py) adds:

- the head (request line and headers) must arrive whole within `header_seconds` of the
  connection's start, or of the request's first byte on a kept-alive connection: else 408,
  or, when nothing at all was sent, the connection is just closed;
- the head may take at most `max_header_bytes`, counted as it arrives: else 431;
- the body must arrive whole within `body_seconds` more than the head had: else 408 (the app,
  waiting for it, hears that the client is gone), or, when the app answered without reading
  all of it, the connection is closed. While the server itself has stopped reading (more than
  64 KiB the app has not taken yet, or a pipelined request waiting its turn) the client is not
  late;
- bytes that begin no request (the rest of a body the app answered without reading, blank
  lines) no longer switch the keep-alive timeout off for good;
- past `max_requests` requests in flight in this process, 503 `server_busy` with Retry-After.
  Requests, not connections: idle connections cost a file descriptor and a few KiB each and
  are bounded by the deadlines above and the keep-alive timeout;
- one client address may have at most `max_client_requests` of those in flight (its share):
  past it, 429 `too_many_requests_in_flight` with Retry-After, while other addresses are
  served. Without it, one address whose requests never send their body held the whole
  process (issue 22). The address is the rate limit's (reservation/api/client_address.py):
  the socket peer's, or the trusted proxy header's. A request counts from its start to the end
  of its task, whatever ends it (its answer, a refusal, a deadline, the client gone);
- one peer address may have at most `max_client_connections` connections open: one more is
  closed at once, unanswered. Not applied behind a trusted proxy header, where every
  connection is the proxy's (the proxy bounds its clients' connections);
- `/healthz` and `/readyz` are never refused for load (neither bound of requests applies):
  a busy process answers its probes, and is not taken for a dead one;
- bytes that are no HTTP request get a 400 `invalid_http` error body, not uvicorn's text;

and one thing for speed: an answer's head and body leave in one write (`OneWrite`; uvicorn
writes them apart, two system calls and two packets per answer; reservation/server/one_write.py).

Each answer is the project's error body (reservation/api/failures.py). A refusal of a whole
head (429, 431, 503) is run as the request's app, and the connection stays usable; a refusal
of a request still coming (400, 408, a 431 of a head still arriving) is written by the
protocol and ends the connection. h11, uvicorn's other parser, bounds only the head's size,
and only of a head spread over several reads (`h11_max_incomplete_event_size`), and costs
about six times httptools' CPU per request; hence httptools with these bounds
(docs/design.md, "Slow and oversized clients").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from starlette.responses import Response

from domain.errors import HeadersTooLarge, ServerBusy, TooManyInFlight
from reservation.api.failures import error_answer
from reservation.settings import Settings


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """The bounds of one connection, of one worker's requests in flight, and of one client
    address's share of them (0: no share)."""

    header_seconds: float = 10.0
    body_seconds: float = 30.0
    max_header_bytes: int = 32 * 1024
    max_requests: int = 4096
    max_client_requests: int = 256
    max_client_connections: int = 1024
    trusted_proxy_header: str | None = None  # where the client address is, behind a proxy

    @classmethod
    def of(cls, settings: Settings) -> ClientLimits:
        return cls(
            header_seconds=settings.header_timeout_seconds,
            body_seconds=settings.body_timeout_seconds,
            max_header_bytes=settings.max_header_bytes,
            max_requests=settings.max_concurrent_requests,
            max_client_requests=settings.max_requests_per_client,
            max_client_connections=settings.max_connections_per_client,
            trusted_proxy_header=settings.trusted_proxy_header,
        )


# The refusals a crowd may draw, made once: refusing costs no encoding per request. Each is
# an ASGI app too, and keeps no state, so one answer serves any number of requests.
@functools.cache
def server_busy() -> Response:
    return error_answer(ServerBusy("this process has too many requests in flight"))


@functools.cache
def head_too_large(limit: int) -> Response:
    message = f"a request's line and headers are limited to {limit} bytes"
    return error_answer(HeadersTooLarge(message, limit=limit))


@functools.cache
def too_many_in_flight(limit: int) -> Response:
    message = f"this client address already has {limit} requests in flight here"
    return error_answer(TooManyInFlight(message, limit=limit))


# The probes of an orchestrator or load balancer (reservation/api/ops.py): never refused for
# load, or a busy process would be taken for a dead one and restarted, adding to the load.
PROBES = frozenset({"/healthz", "/readyz"})
