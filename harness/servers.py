"""Servers started on demand by the tests, the benchmarks, the flash-sale rehearsal and the
demo: Redis servers of their own, in their own directories, stopped afterwards; and the process
helpers of reservation/stores/processes.py, re-exported for them."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from reservation.stores.processes import (
    free_port,
    log_tail,
    stop_process,
    wait_for_http,
    wait_until,
)

__all__ = ["free_port", "log_tail", "stop_process", "wait_for_http", "wait_until"]

REDIS_SERVER = shutil.which("redis-server")


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
