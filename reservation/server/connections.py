"""What one client connection may take from a worker: uvicorn's httptools protocol, bounded.

uvicorn bounds the idle time between two requests of a connection (`timeout_keep_alive`), and
nothing else a client controls. Any byte cancels that timer and only an answer arms it again,
so a new connection that never sends, a request line and headers that never end (slowloris),
and a body that trickles or stops (`Content-Length: 1000`, then a byte now and then) each held
a connection for ever; httptools reads a request's headers of any size into memory (2 MB of
them were answered 200); and `limit_concurrency` counts open connections as well as requests,
so a crowd of idle connections would turn every answer into a 503. `ClientProtocol` adds:

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
writes them apart, two system calls and two packets per answer).

Each answer is the project's error body (reservation/api/failures.py). A refusal of a whole
head (429, 431, 503) is run as the request's app, and the connection stays usable; a refusal
of a request still coming (400, 408, a 431 of a head still arriving) is written by the
protocol and ends the connection. h11, uvicorn's other parser, bounds only the head's size,
and only of a head spread over several reads (`h11_max_incomplete_event_size`), and costs
about six times httptools' CPU per request; hence httptools with these bounds
(docs/design.md, "Slow and oversized clients").
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import math
import resource
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import httptools
import uvicorn
from starlette.responses import Response
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.flow_control import CLOSE_HEADER
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from domain.errors import HeadersTooLarge, InvalidHttp, RequestTimeout, ServerBusy, TooManyInFlight
from reservation.api.client_address import UNKNOWN, address_of
from reservation.api.failures import error_answer
from reservation.settings import Settings

logger = logging.getLogger("reservation.connections")


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


# Connections the kernel queues until the server accepts them (uvicorn's default: 2,048; the
# kernel caps it at net.core.somaxconn): a crowd of 3,000 connecting at once is not refused.
LISTEN_BACKLOG = 4096


class ServiceConfig(uvicorn.Config):
    """uvicorn's Config serving through `ClientProtocol` with `limits`. It pickles (a module
    class and plain values), so the workers of `serve --workers N` receive the limits too."""

    def __init__(self, app: str, limits: ClientLimits, **options: Any) -> None:
        # No WebSocket protocol: the service has no WebSocket route, and an upgrade would
        # leave these bounds for the other protocol's. No proxy headers: uvicorn's would take
        # the client of a request from 127.0.0.1 or ::1 out of its X-Forwarded-For, a second
        # rule beside RESERVATION_TRUSTED_PROXY_HEADER's (reservation/api/client_address.py),
        # which the rate limit and the shares of this module both follow.
        options.setdefault("backlog", LISTEN_BACKLOG)
        options.setdefault("proxy_headers", False)
        super().__init__(app, http=ClientProtocol, ws="none", **options)
        self.client_limits = limits


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

# What each client address holds in this process now: its requests in flight and its open
# connections (every worker of `serve --workers N` has its own). An address leaves its dict
# when its count falls to 0: they hold only the clients present.
REQUESTS: dict[str, int] = {}
CONNECTIONS: dict[str, int] = {}


def count_out(counts: dict[str, int], address: str) -> None:
    held = counts[address]
    if held == 1:
        del counts[address]
    else:
        counts[address] = held - 1


NONE = math.inf  # no deadline

# After a refusal written outside any request, how long the connection still reads (and
# drops) what the client sends before it closes: closing with unread bytes makes the kernel
# reset the connection, and the client would lose the answer (nginx's lingering close).
LINGER_SECONDS = 2.0


class OneWrite(asyncio.Transport):
    """A connection's transport as uvicorn sees it: what is written in one turn of the event
    loop leaves in one write, at the end of that turn.

    uvicorn writes an answer's head and its body apart, and uvloop sends each at once: two
    system calls and two packets per answer, and a client woken for half an answer. Here the
    head waits for the body (written right after it, in the same turn) and both go together;
    a write nothing follows (a streamed chunk, `100 Continue`) leaves at the end of the turn.
    Closing sends what waits first; an abort drops it."""

    __slots__ = ("loop", "pending", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.transport = transport
        self.loop = loop
        self.pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pending = self.pending
        if not pending:
            self.loop.call_soon(self.flush)
        pending.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        pending = self.pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        if not self.transport.is_closing():  # else the client is gone: nobody to read it
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self.pending.clear()
        self.transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def can_write_eof(self) -> bool:
        return self.transport.can_write_eof()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def is_reading(self) -> bool:
        return self.transport.is_reading()

    def get_write_buffer_size(self) -> int:
        waiting = sum(len(data) for data in self.pending)
        return self.transport.get_write_buffer_size() + waiting

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.transport.get_write_buffer_limits()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.transport.get_protocol()


class ClientProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines for a request's head and body, a limit on
    the head's size, limits on the requests in flight and on one client's share of them and
    of the connections (see the module's docstring).

    A request that arrives whole in one read, the usual case, passes through five short
    overrides: a few attribute reads and stores, two clock reads, a count in and out of its
    client's share, no timer."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = config.client_limits if isinstance(config, ServiceConfig) else ClientLimits()
        self.header_seconds = limits.header_seconds
        self.body_seconds = limits.body_seconds
        self.max_header_bytes = limits.max_header_bytes
        self.max_requests = limits.max_requests
        self.limit_concurrency = None  # requests in flight are counted here instead
        # The loop time by which the current phase (head, body, linger) must be over; NONE:
        # no phase runs (the app is answering, or the connection is idle between requests,
        # which is uvicorn's keep-alive timeout).
        self.deadline = NONE
        self.timer: asyncio.TimerHandle | None = None  # fires at timer_at, checks deadline
        self.timer_at = 0.0
        self.in_head = False  # from a request's first byte to its last header
        self.completed = 0  # requests received whole on this connection
        self.head_bytes = 0  # bytes of the unfinished head, from reads before this one
        self.measure_head = False  # the head ending in this read may be over the limit
        self.lingering = False  # refused: what comes is dropped until the connection closes
        self.max_client_requests = limits.max_client_requests
        header = limits.trusted_proxy_header
        # Behind a trusted proxy every connection is the proxy's: the connections are not
        # counted per client there, the requests are (by the address in the header).
        self.max_client_connections = 0 if header else limits.max_client_connections
        self.trusted_header = header.lower().encode("latin-1") if header else None
        self.service = self.app  # the app itself; a refusal may run in its place
        self.peer_host: str | None = None  # the socket peer's host
        self.peer = UNKNOWN  # its address, as the shares count it
        self.counted = False  # this connection counts toward its peer's connections
        # Behind the proxy: the header's last value on this connection and its address (a
        # proxy's connection often carries one client's requests one after another).
        self.forwarded = b""
        self.forwarded_address = UNKNOWN
        self.on_request_done = self.request_done  # bound once: every request's task ends in it

    # -- the connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are asyncio.Transport in all but name.
        super().connection_made(OneWrite(cast("asyncio.Transport", transport), self.loop))
        if self.max_client_requests or self.max_client_connections:
            self.peer_host = self.client[0] if self.client else None
            self.peer = address_of(self.peer_host, None)
        if self.max_client_connections:
            held = CONNECTIONS.get(self.peer, 0)
            if held >= self.max_client_connections:
                # Closed unanswered: an answer would hold the connection while it is read.
                logger.info(
                    "too many connections from one client: closed",
                    extra=self.context("too_many_connections"),
                )
                self.lingering = True
                self.transport.close()
                return
            CONNECTIONS[self.peer] = held + 1
            self.counted = True
        self.set_deadline(self.header_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.counted:
            self.counted = False
            count_out(CONNECTIONS, self.peer)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return
        if self.in_head:
            self.more_head(data)
            return
        # A read larger than the limit is measured where its head ends; a head whole in one
        # small read, the usual one, costs nothing.
        self.measure_head = len(data) > self.max_header_bytes
        completed = self.completed
        super().data_received(data)
        if self.in_head:
            # A head began and did not end. Its bytes are this read's, unless another request
            # ended in it too (then they are counted from the next read on).
            self.head_bytes = len(data) if completed == self.completed else 0
            self.check_head_bytes()
        elif self.deadline == NONE and (self.cycle is None or self.cycle.response_complete):
            self.no_request(completed != self.completed)

    def more_head(self, data: bytes) -> None:
        """A read that goes on with an unfinished head."""
        scope, size = self.scope, self.head_bytes + len(data)
        self.measure_head = True  # it spans reads: measured where it ends
        super().data_received(data)
        if self.in_head:
            # The same head still, or one after it (pipelined): counted from the next read.
            self.head_bytes = size if self.scope is scope else 0
            self.check_head_bytes()

    def check_head_bytes(self) -> None:
        if self.head_bytes <= self.max_header_bytes or self.lingering:
            return  # under the limit, or refused already (bytes no request begins with: 400)
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.refuse(head_too_large(self.max_header_bytes), "head too large")
        else:
            self.last_answer()  # a pipelined head, behind an answer in progress

    def no_request(self, body_ended: bool) -> None:
        """Bytes came that began no request, and uvicorn's keep-alive timer (which any byte
        cancels, and only an answer arms) is off."""
        if self.transport.is_closing():
            return
        if body_ended:
            # The rest of a body the app answered without reading: idle from here.
            if self.timeout_keep_alive_task is None:
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )
        else:
            # Blank lines, or the like: a head is due, as after a request's first byte.
            self.set_deadline(self.header_seconds)

    # -- httptools' callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = True
        if self.deadline == NONE:  # a new connection's first head keeps its first deadline
            self.set_deadline(self.header_seconds)

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.measure_head:
            self.refuse_or_start()
        else:
            super().on_headers_complete()
        # The body's time follows the head's (no clock read: the timer, set for the head's
        # deadline, is early, and re-arms for this one when it fires).
        self.deadline += self.body_seconds

    def refuse_or_start(self) -> None:
        """Start the request whose head just ended, or, past the head's limit, its refusal:
        uvicorn runs it as usual, with the refusal as its app (a body is dropped within the
        body deadline, and the connection stays usable)."""
        if self.head_size() <= self.max_header_bytes:
            super().on_headers_complete()
            return
        logger.info("431: head too large", extra=self.context("head_too_large"))
        app, self.app = self.app, head_too_large(self.max_header_bytes)
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.deadline = NONE
        self.completed += 1

    def head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    # -- requests in flight ------------------------------------------------------------------

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        """uvicorn's start of a request (at once, or when a pipelined one's turn comes), which
        admits it: past the process's requests in flight, or its client's share of them, a
        refusal runs in its place; and it counts toward that share until its task ends, in
        the one done callback that also takes it out of the process's count."""
        done: Callable[[asyncio.Task[None]], object]
        if self.max_client_requests:
            if self.trusted_header is None:
                address, done = self.peer, self.on_request_done
            else:
                address = self.proxied(cycle.scope["headers"])
                done = functools.partial(self.proxied_request_done, address)
            held = REQUESTS.get(address, 0)
            if held >= self.max_client_requests or len(self.tasks) >= self.max_requests:
                app = self.refusal(cycle, app, held)
            REQUESTS[address] = held + 1
        else:
            if len(self.tasks) >= self.max_requests:
                app = self.refusal(cycle, app, 0)
            done = self.tasks.discard
        if self.config.reset_contextvars:
            task = self.loop.create_task(cycle.run_asgi(app), context=contextvars.Context())
        else:
            task = self.loop.create_task(cycle.run_asgi(app))
        task.add_done_callback(done)
        self.tasks.add(task)

    def refusal(
        self, cycle: RequestResponseCycle, app: ASGI3Application, held: int
    ) -> ASGI3Application:
        """What runs for a request past a bound of requests in flight, `held` being its
        client's: 429 past the client's share, else 503; the app itself for a probe, and the
        refusal it is already (431)."""
        if app is not self.service or cycle.scope["path"] in PROBES:
            return app
        if self.max_client_requests and held >= self.max_client_requests:
            logger.info(
                "429: too many requests in flight from one client",
                extra=self.context("client_busy"),
            )
            return cast("ASGI3Application", too_many_in_flight(self.max_client_requests))
        logger.warning("503: too many requests in flight", extra=self.context("busy"))
        return cast("ASGI3Application", server_busy())

    def proxied(self, headers: Iterable[tuple[bytes, bytes]]) -> str:
        """The client address of a request behind the trusted proxy, by the rate limit's rule:
        the last line of the header, else the peer."""
        name, forwarded = self.trusted_header, None
        for key, value in headers:
            if key == name:
                forwarded = value
        if forwarded is None:
            return self.peer
        if forwarded != self.forwarded:
            self.forwarded = forwarded
            self.forwarded_address = address_of(self.peer_host, forwarded.decode("latin-1"))
        return self.forwarded_address

    def request_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        count_out(REQUESTS, self.peer)

    def proxied_request_done(self, address: str, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        count_out(REQUESTS, address)

    # -- malformed requests ------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes httptools cannot parse (it writes plain text, then
        closes): the API's 400 `invalid_http`, and the connection ends, as the parser cannot
        go on. Called while uvicorn handles the parser's error."""
        error = sys.exception()
        why = f": {error}" if isinstance(error, httptools.HttpParserError) and str(error) else ""
        answer = error_answer(InvalidHttp(f"the bytes received are not an HTTP/1.1 request{why}"))
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            turn = next((i for i, (c, _) in enumerate(self.pipeline) if c is cycle), None)
            if not cycle.more_body or turn is not None:
                # Answers are due before these bytes: the connection ends after them, and
                # what still comes is dropped (no deadline: the answers are not the client's).
                if turn is not None and cycle.more_body:
                    # The broken body of a request waiting its turn (pipelined): its 400 then.
                    logger.info("400: invalid http", extra=self.context("invalid_http"))
                    self.pipeline[turn] = (cycle, cast("ASGI3Application", answer))
                self.last_answer()
                self.lingering, self.deadline = True, NONE
                return
            # A broken body: the app waiting for it hears that the client is gone.
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        self.refuse(answer, "invalid http")

    # -- deadlines ---------------------------------------------------------------------------

    def set_deadline(self, seconds: float) -> None:
        self.deadline = deadline = self.loop.time() + seconds
        if self.timer is None or deadline < self.timer_at:
            self.arm(deadline)

    def arm(self, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = when
        self.timer = self.loop.call_at(when, self.on_timer)

    def on_timer(self) -> None:
        self.timer = None
        if self.deadline == NONE or self.transport.is_closing():
            return
        if self.loop.time() < self.deadline:
            self.arm(self.deadline)  # the phase started after this timer was set
            return
        if self.lingering:
            self.transport.close()
            return
        if not self.in_head and self.cycle is not None and self.flow.read_paused:
            self.set_deadline(self.body_seconds)  # this side stopped reading, not the client
            return
        self.expire()

    def expire(self) -> None:
        cycle = self.cycle
        idle = cycle is None or cycle.response_complete
        if self.in_head:
            if not idle:
                self.last_answer()  # a pipelined head, stalled behind an answer in progress
                return
            timeout = RequestTimeout(
                f"the request line and headers did not arrive within {self.header_seconds:g} s"
            )
            self.refuse(error_answer(timeout), "head too slow")
        elif idle:
            # Nothing sent since the connection opened, or nothing that began a request since
            # the last answer (the rest of a body the app did not read, blank lines).
            logger.info("no request: connection closed", extra=self.context("idle"))
            self.transport.close()
        else:
            # The body is late. The app's sends go nowhere from now on, and its receive hears
            # that the client is gone (a 408 of its own, unsent: reservation/api/bodies.py).
            assert cycle is not None
            answered = cycle.response_started
            cycle.disconnected = True
            cycle.message_event.set()
            if answered:
                logger.info("body too slow, answer cut", extra=self.context("slow_body"))
                self.transport.close()
            else:
                timeout = RequestTimeout(
                    f"the request body did not arrive within {self.body_seconds:g} s"
                )
                self.refuse(error_answer(timeout), "body too slow")

    def refuse(self, response: Response, why: str) -> None:
        """Write `response` on the wire, outside any request the app runs; then end the
        connection: no more requests, what the client still sends is dropped, and it closes
        when the client does or after LINGER_SECONDS."""
        status = response.status_code
        logger.info("%d: %s", status, why, extra=self.context(why.replace(" ", "_")))
        head = [STATUS_LINE[status]]
        headers = (*self.server_state.default_headers, *response.raw_headers, CLOSE_HEADER)
        for name, value in headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"\r\n")
        self.transport.write(b"".join(head) + response.body)
        self.lingering = True
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer, then end of stream
        self.set_deadline(LINGER_SECONDS)

    def last_answer(self) -> None:
        """The answer in progress is the connection's last: read nothing more, close after it."""
        assert self.cycle is not None
        self.cycle.keep_alive = False
        self.flow.pause_reading()

    def context(self, outcome: str) -> dict[str, object]:
        client = f"{self.client[0]}:{self.client[1]}" if self.client else None
        return {"client": client, "outcome": outcome}


def raise_open_files_limit() -> tuple[int, int]:
    """Raise this process's soft limit of open files to its hard limit (as Go does at start):
    each connection is a file, and many systems give processes a soft 1,024. Returns the
    (soft, hard) limits in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft, hard
