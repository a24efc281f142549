"""Servers started on demand (tests, benchmarks, the flash-sale rehearsal, the embedded
MongoDB): a free loopback port, waiting until one answers, stopping it; and Redis servers of
their own, in their own directories, stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import redis

REDIS_SERVER = shutil.which("redis-server")


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


def _command(client: redis.Redis, *args: str | int) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def start_redis(workdir: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    assert REDIS_SERVER, "redis-server is not installed"
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--logfile",
            str(workdir / "redis.log"),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        wait_until(client.ping, f"redis-server on port {port}", exited=process.poll)
    except RuntimeError:
        stop_process(process)
        raise
    finally:
        client.close()
    return process


class RedisServer:
    """A redis-server of its own on one loopback port, files in `workdir`, that can be stopped
    and started again on the same port (fault tests and drills); `extra` are more of its
    options (e.g. an AOF, so that a restart keeps the data)."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        self.workdir = workdir
        self.extra = extra
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = start_redis(self.workdir, self.port, *self.extra)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def redis_cluster(workdir: Path, masters: int = 3) -> Iterator[list[int]]:
    """A local Redis Cluster of `masters` primaries, slots split evenly; yields their ports."""
    ports = [free_port() for _ in range(masters)]
    processes = []
    try:
        for port in ports:
            processes.append(
                start_redis(
                    workdir / str(port),
                    port,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                )
            )
        clients = [redis.Redis(host="127.0.0.1", port=port) for port in ports]
        step = 16384 // masters
        for i, client in enumerate(clients):
            last = 16383 if i == masters - 1 else (i + 1) * step - 1
            _command(client, "CLUSTER", "ADDSLOTSRANGE", i * step, last)
        for client in clients[1:]:
            _command(client, "CLUSTER", "MEET", "127.0.0.1", ports[0])

        def ready() -> bool:
            return all(
                "cluster_state:ok" in _command(c, "CLUSTER", "INFO").decode()
                and len(_command(c, "CLUSTER", "NODES").decode().splitlines()) == masters
                for c in clients
            )

        wait_until(ready, "redis cluster", timeout=30)
        for client in clients:
            client.close()
        yield ports
    finally:
        for process in processes:
            stop_process(process)
