"""Embedded stand-ins when no service is configured: fakeredis, and nx-27017 for MongoDB.

They make `reservation serve` and the demo run on a bare machine; production points
REDIS_URL and MONGODB_URI at the real services. Both come with the `demo` extra
(`pip install "stripe-reservation[demo]"`): without it, a store left unset is refused with that
advice rather than failing on an import.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pymongo
from pymongo.errors import PyMongoError

from reservation.lua.library import RedisClient
from reservation.stores.processes import free_port, stop_process, wait_until

MISSING_EXTRA = 'the embedded stores are not installed: pip install "stripe-reservation[demo]"'


class NotInstalled(RuntimeError):
    """A store is left unset and its embedded stand-in is not installed (the `demo` extra)."""


def require_embedded_redis() -> None:
    """NotInstalled unless fakeredis can be imported (checked before a server starts, so the
    answer is a clear refusal rather than a worker failing on its lifespan)."""
    try:
        import fakeredis  # noqa: F401
    except ImportError as exc:
        raise NotInstalled(f"REDIS_URL is not set and {MISSING_EXTRA}") from exc


def embedded_redis() -> RedisClient:
    """An in-process Redis (fakeredis with Lua): one process only, nothing kept."""
    require_embedded_redis()
    import fakeredis

    client: RedisClient = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    return client


def nx_binary() -> str | None:
    """The nx-27017 script of this virtualenv, else the one on PATH."""
    beside = Path(sys.executable).parent / "nx-27017"
    return str(beside) if beside.exists() else shutil.which("nx-27017")


class EmbeddedMongo:
    """An nx-27017 process on a loopback port, its files in `workdir`; stop and start again.

    nx-27017 gets `--data-dir` rather than `--db`: with one database file every logical
    database shares the same collections, while a data directory keeps one file per database.
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> str:
        """Start the server (same port, same data), wait until it answers; its URI."""
        binary = nx_binary()
        if binary is None:
            raise NotInstalled(f"MONGODB_URI is not set and {MISSING_EXTRA}")
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--data-dir",
                str(data),
                "-p",
                str(self.port),
                "--host",
                "127.0.0.1",
                "--log-file",
                str(self.workdir / "nx-27017.log"),
                "--pid-file",
                str(self.workdir / f"nx-27017-{self.port}.pid"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait(timeout)
        except BaseException:
            self.stop()
            raise
        return self.uri

    def stop(self) -> None:
        """Stop the server: terminate, then kill if it lingers."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)

    def _wait(self, timeout: float) -> None:
        assert self.process is not None
        wait_until(
            self._answers,
            f"nx-27017 on port {self.port}",
            timeout,
            errors=(PyMongoError,),
            exited=self.process.poll,
        )

    def _answers(self) -> bool:
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            self.uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250
        )
        try:
            client.admin.command("ping")
        finally:
            client.close()
        return True
