"""MongoDB for the tests: MONGODB_URI when set, else an nx-27017 server started here.

nx-27017 gets `--data-dir` rather than `--db`: with one database file every logical database
shares the same collections (dropping one test's database drops every test's), while a data
directory keeps one file per database, so a database name per test isolates it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pymongo
import pytest
from pymongo.errors import PyMongoError

from persistence.mongo import Database, connect, ensure_indexes
from tests.servers import free_port


def nx_binary() -> str | None:
    """The nx-27017 script of this virtualenv, else the one on PATH."""
    beside = Path(sys.executable).parent / "nx-27017"
    return str(beside) if beside.exists() else shutil.which("nx-27017")


class MongoServer:
    """An nx-27017 process on a loopback port, its files in `workdir`; stop and start again."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        """Start the server (same port, same data) and wait until it answers a ping."""
        binary = nx_binary()
        if binary is None:
            pytest.skip("nx-27017 is not installed and MONGODB_URI is not set")
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
                str(self.workdir / "nx-27017.pid"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server: terminate, then kill if it lingers."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nx-27017 exited with {self.process.returncode}")
            client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
                self.uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250
            )
            try:
                client.admin.command("ping")
                return
            except PyMongoError as exc:
                last = exc
            finally:
                client.close()
            time.sleep(0.05)
        raise RuntimeError(f"nx-27017 on port {self.port} did not come up: {last}")


@pytest.fixture(scope="session")
def mongodb_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The MongoDB every test shares (each in a database of its own)."""
    if os.environ.get("MONGODB_URI"):
        yield os.environ["MONGODB_URI"]
        return
    server = MongoServer(tmp_path_factory.mktemp("mongo"))
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
async def mongo_db(mongodb_uri: str) -> AsyncIterator[Database]:
    """A fresh database with the indexes, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    client, db = connect(mongodb_uri, name)
    try:
        await ensure_indexes(db)
        yield db
    finally:
        await client.drop_database(name)
        await client.close()
