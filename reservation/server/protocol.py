"""The service's HTTP protocol: `DeadlineProtocol` (reservation/server/deadlines.py) with
bounds on the requests in flight in a process and on one client's share of them and of the
connections, and the uvicorn config that serves through it (reservation/server/limits.py says
why and what each bound is)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, cast

import uvicorn
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
from uvicorn.server import ServerState

from reservation.api.client_address import UNKNOWN, address_of
from reservation.api.stock_events import LONG_LIVED
from reservation.server.deadlines import DeadlineProtocol
from reservation.server.limits import PROBES, ClientLimits, server_busy, too_many_in_flight

logger = logging.getLogger("reservation.connections")

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


# What each client address holds in this process now: its requests in flight and its open
# connections (every worker of `serve --workers N` has its own). An address leaves its dict
# when its count falls to 0: they hold only the clients present.
REQUESTS: dict[str, int] = {}
CONNECTIONS: dict[str, int] = {}
# The tasks of requests that left those counts while they run: event streams, which last
# minutes and have a cap of their own (reservation/api/stock_events.py). Still in the server's
# tasks, so a graceful shutdown waits for them.
LONG_LIVED_TASKS: set[asyncio.Task[None]] = set()


def count_out(counts: dict[str, int], address: str) -> None:
    held = counts[address]
    if held == 1:
        del counts[address]
    else:
        counts[address] = held - 1


class ClientProtocol(DeadlineProtocol):
    """uvicorn's httptools protocol with the deadlines and the head's limit of
    `DeadlineProtocol`, and limits on the requests in flight and on one client's share of them
    and of the connections.

    A request that arrives whole in one read, the usual case, passes through five short
    overrides (four of them `DeadlineProtocol`'s): a few attribute reads and stores, two clock
    reads, a count in and out of its client's share, no timer."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        limits = config.client_limits if isinstance(config, ServiceConfig) else ClientLimits()
        super().__init__(config, server_state, app_state, _loop, limits)
        self.max_requests = limits.max_requests
        self.limit_concurrency = None  # requests in flight are counted here instead
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
        # Offered to every request's app (the same dict for each: nobody writes to it).
        self.extensions: dict[str, dict[object, object]] = {
            LONG_LIVED: {"leave": self.leave_counts}
        }

    # -- the connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
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

    def connection_lost(self, exc: Exception | None) -> None:
        if self.counted:
            self.counted = False
            count_out(CONNECTIONS, self.peer)
        super().connection_lost(exc)

    # -- requests in flight ------------------------------------------------------------------

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        """uvicorn's start of a request (at once, or when a pipelined one's turn comes), which
        admits it: past the process's requests in flight, or its client's share of them, a
        refusal runs in its place; and it counts toward that share until its task ends, in
        the one done callback that also takes it out of the process's count."""
        done: Callable[[asyncio.Task[None]], object]
        cycle.scope["extensions"] = self.extensions
        in_flight = len(self.tasks) - len(LONG_LIVED_TASKS)
        if self.max_client_requests:
            if self.trusted_header is None:
                address, done = self.peer, self.on_request_done
            else:
                address = self.proxied(cycle.scope["headers"])
                done = functools.partial(self.proxied_request_done, address)
            held = REQUESTS.get(address, 0)
            if held >= self.max_client_requests or in_flight >= self.max_requests:
                app = self.refusal(cycle, app, held)
            REQUESTS[address] = held + 1
        else:
            if in_flight >= self.max_requests:
                app = self.refusal(cycle, app, 0)
            done = self.request_done_unshared
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

    def leave_counts(self, scope: dict[str, Any]) -> None:
        """The request running now (an event stream that starts) leaves the requests in
        flight and its client's share of them, for the rest of its task."""
        task = asyncio.current_task()
        if task not in self.tasks or task in LONG_LIVED_TASKS:
            return
        LONG_LIVED_TASKS.add(cast("asyncio.Task[None]", task))
        if self.max_client_requests:
            address = self.peer if self.trusted_header is None else self.proxied(scope["headers"])
            count_out(REQUESTS, address)

    def request_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if task in LONG_LIVED_TASKS:
            LONG_LIVED_TASKS.discard(task)  # counted out when it left
        else:
            count_out(REQUESTS, self.peer)

    def proxied_request_done(self, address: str, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if task in LONG_LIVED_TASKS:
            LONG_LIVED_TASKS.discard(task)
        else:
            count_out(REQUESTS, address)

    def request_done_unshared(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        LONG_LIVED_TASKS.discard(task)
