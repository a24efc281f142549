"""Serving under uvicorn: signals noted until uvicorn takes over, a hook once the workers
accept requests, and the bounds of what one client may take applied in every worker."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG, STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from reservation.server.worker_metrics import ExitedWorkers
from reservation.settings import Settings


class StopSignals:
    """SIGTERM and SIGINT noted, never raised, until uvicorn's own handlers take over.

    An exception raised by a signal handler lands wherever the main thread happens to be, and
    Python ignores it there when that is a weakref callback or a __del__ (seen: a SIGTERM while
    the workers started was lost that way and serve ran on). So serve notes the signal, does
    not start uvicorn once one came, tells a starting uvicorn to stop, and always stops what it
    started on its way out. uvicorn restores these handlers when it returns and sends them the
    signals it handled, which changes nothing then.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: int | None = None
        for signum in self.SIGNALS:
            signal.signal(signum, self.note)

    def note(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum


class ReadyServer(uvicorn.Server):
    """One uvicorn server that calls `ready` once it listens (after the app's lifespan)."""

    def __init__(
        self, config: uvicorn.Config, ready: Callable[[], None], stop: StopSignals
    ) -> None:
        super().__init__(config)
        self.ready = ready
        self.stop = stop

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.stop.received is not None:
            self.should_exit = True  # a signal came before uvicorn listened for them
        if self.started and not self.should_exit:
            self.ready()


class ReadyMultiprocess(Multiprocess):
    """uvicorn's worker supervisor, calling `ready` once every worker reports started."""

    def __init__(
        self,
        config: uvicorn.Config,
        sockets: list[socket.socket],
        ready: Callable[[], None],
        stop: StopSignals,
    ) -> None:
        super().__init__(config, sockets)
        self.ready: Callable[[], None] | None = ready
        self.stop = stop
        self.exited = ExitedWorkers()

    def keep_subprocess_alive(self) -> None:
        if self.stop.received is not None:
            self.should_exit.set()  # a signal came before the supervisor listened for them
        super().keep_subprocess_alive()
        # A worker replaced (it died) or let go (SIGTTOU): its live gauges leave the scrape.
        self.exited.look({process.pid for process in self.processes if process.pid is not None})
        if self.ready is None or self.should_exit.is_set():
            return
        # A worker answers the supervisor's health check with whether its server has started
        # (lifespan done, accepting on the shared socket).
        timeout = self.config.timeout_worker_healthcheck
        if all(process.is_ready(timeout) for process in self.processes):
            self.ready()
            self.ready = None


def run_uvicorn(
    host: str,
    port: int,
    workers: int,
    ready: Callable[[], None],
    stop: StopSignals,
    settings: Settings,
    log_config: dict[str, Any] | None = None,
) -> None:
    """uvicorn.run, with a hook once the service accepts requests; `log_config` (uvicorn's
    when None) is applied in every worker, and so are the bounds of what one client may take
    (reservation/server/limits.py)."""
    from reservation.server.limits import ClientLimits
    from reservation.server.open_files import raise_open_files_limit
    from reservation.server.protocol import ServiceConfig

    raise_open_files_limit()  # each connection is a file; the workers inherit the limit
    config = ServiceConfig(
        "reservation.app:create_app",
        ClientLimits.of(settings),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        log_config=log_config or LOGGING_CONFIG,
        timeout_keep_alive=settings.keep_alive_seconds,
    )
    if workers > 1:
        ReadyMultiprocess(config, [config.bind_socket()], ready, stop).run()
        return
    server = ReadyServer(config, ready, stop)
    server.run()
    if not server.started and stop.received is None:
        raise SystemExit(STARTUP_FAILURE)
