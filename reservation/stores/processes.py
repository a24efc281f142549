"""Child processes the service starts itself (the embedded MongoDB) and the harness reuses: a
free loopback port, waiting until a server answers, stopping a process and what it started."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis


def free_port() -> int:
    """A free loopback port below 55535 (a cluster node also listens on port + 10000)."""
    for _ in range(200):
        port = random.randint(20000, 50000)
        with socket.socket() as sock, socket.socket() as bus:
            try:
                sock.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port")


def wait_until(
    ready: Callable[[], object],
    what: str,
    timeout: float = 15.0,
    *,
    errors: tuple[type[Exception], ...] = (redis.RedisError,),
    exited: Callable[[], int | None] | None = None,
    poll_seconds: float = 0.05,
) -> None:
    """Call `ready` until it returns something true; `errors` it raises meanwhile count as
    not yet. `exited` (a Popen's poll, say) gives the exit status of the process that should
    answer: once it has one, waiting stops. RuntimeError when it exits or the time is up."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if exited is not None and (status := exited()) is not None:
            raise RuntimeError(f"{what} exited with {status}")
        try:
            if ready():
                return
        except errors as exc:
            last = exc
        time.sleep(poll_seconds)
    raise RuntimeError(f"{what} did not come up in {timeout:g} s: {last}")


def wait_for_http(
    url: str,
    what: str,
    timeout: float = 30.0,
    *,
    exited: Callable[[], int | None] | None = None,
    log: Path | None = None,
) -> None:
    """wait_until GET `url` answers 200; the error ends with the last lines of `log`."""

    def answers() -> bool:
        return httpx.get(url, timeout=1.0).status_code == 200

    try:
        wait_until(
            answers, what, timeout, errors=(httpx.HTTPError,), exited=exited, poll_seconds=0.1
        )
    except RuntimeError as exc:
        if log is None:
            raise
        raise RuntimeError(f"{exc}:\n{log_tail(log)}") from exc


def log_tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stop_process(
    process: subprocess.Popen[Any], grace_seconds: float = 10, *, session: bool = False
) -> None:
    """Terminate a child process, and kill it if it lingers. With `session` (the process was
    started with start_new_session=True), SIGKILL whatever is still left in its session after
    that: workers, servers it started."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if session:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the session is this process's alone
