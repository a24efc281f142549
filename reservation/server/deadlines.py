"""uvicorn's httptools protocol with deadlines for a request's head and body and a limit on
the head's size; what it refuses outside any request it writes on the wire itself
(reservation/server/limits.py says why and what each bound is)."""

from __future__ import annotations

import asyncio
import logging
import math
import sys
from typing import Any, cast

import httptools
import uvicorn
from starlette.responses import Response
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.flow_control import CLOSE_HEADER
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from domain.errors import InvalidHttp, RequestTimeout
from reservation.api.failures import error_answer
from reservation.server.limits import ClientLimits, head_too_large
from reservation.server.one_write import OneWrite

logger = logging.getLogger("reservation.connections")

NONE = math.inf  # no deadline

# After a refusal written outside any request, how long the connection still reads (and
# drops) what the client sends before it closes: closing with unread bytes makes the kernel
# reset the connection, and the client would lose the answer (nginx's lingering close).
LINGER_SECONDS = 2.0


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines for a request's head and body, and a limit
    on the head's size; its answers leave in one write (`OneWrite`).

    A request that arrives whole in one read, the usual case, passes through four short
    overrides: a few attribute reads and stores, two clock reads, no timer."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None,
        limits: ClientLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_seconds = limits.header_seconds
        self.body_seconds = limits.body_seconds
        self.max_header_bytes = limits.max_header_bytes
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

    # -- the connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are asyncio.Transport in all but name.
        super().connection_made(OneWrite(cast("asyncio.Transport", transport), self.loop))
        self.set_deadline(self.header_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
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
