"""Embedded stand-ins when no service is configured: fakeredis, and nx-27017 for MongoDB.

They make `reservation serve` and the demo run on a bare machine; production points
REDIS_URL and MONGODB_URI at the real services.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import fakeredis
import pymongo
from pymongo.errors import PyMongoError

from reservation.scripts import RedisClient


def embedded_redis() -> RedisClient:
    """An in-process Redis (fakeredis with Lua): one process only, nothing kept."""
    client: RedisClient = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    return client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedMongo:
    """An nx-27017 server (MongoDB wire protocol over SQLite) on a loopback port."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> str:
        binary = Path(sys.executable).parent / "nx-27017"
        command = str(binary) if binary.exists() else shutil.which("nx-27017")
        if command is None:
            raise RuntimeError("nx-27017 is not installed: set MONGODB_URI or pip install nx-27017")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                command,
                "--db",
                str(self.data_dir / "mongo.db"),
                "--host",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--log-file",
                str(self.data_dir / "mongo.log"),
                "--pid-file",
                str(self.data_dir / f"mongo-{self.port}.pid"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nx-27017 exited at start; see {self.data_dir / 'mongo.log'}")
            with contextlib.suppress(PyMongoError):
                client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
                    self.uri, serverSelectionTimeoutMS=300
                )
                try:
                    client.admin.command("ping")
                    return self.uri
                finally:
                    client.close()
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("nx-27017 did not answer in time")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
