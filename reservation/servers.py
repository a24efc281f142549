"""Redis servers started on demand (tests, the flash-sale rehearsal): loopback ports, their own
directories, stopped afterwards."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from reservation.embedded import stop_process

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


def _wait(check: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except redis.RedisError as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up: {last}")


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
        _wait(client.ping, f"redis-server on port {port}")
    except RuntimeError:
        stop(process)
        raise
    finally:
        client.close()
    return process


stop = stop_process


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

        _wait(ready, "redis cluster", timeout=30)
        for client in clients:
            client.close()
        yield ports
    finally:
        for process in processes:
            stop(process)
