"""`reservation serve` as a real subprocess on a loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymongo
import pytest
import redis

from harness.servers import free_port, stop_process, wait_for_http
from tests.api import ADMIN_TOKEN
from tests.conftest import REDIS_URL
from tests.shop import WEBHOOK_SECRET
from tests.stripe_fake import API_KEY, SESSION_SECRET, StripeSim, simulators


@dataclass
class Server:
    url: str
    prefix: str
    database: str
    process: subprocess.Popen[bytes]
    sim: StripeSim | None = None
    log: Path | None = None  # what the process wrote (stdout and stderr)


def start_server(
    workdir: Path, mongodb_uri: str, *args: str, port: int | None = None, **env: str
) -> Server:
    """`reservation serve` on `port` (a free one by default), with a key prefix and a database
    of its own, once it is ready; `env` on top of the test's stores and admin token."""
    port = port or free_port()
    prefix = f"srv-{uuid.uuid4().hex[:10]}"
    database = f"srv_{uuid.uuid4().hex[:10]}"
    environment = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "MONGODB_URI": mongodb_uri,
        "MONGODB_DATABASE": database,
        "RESERVATION_ADMIN_TOKEN": ADMIN_TOKEN,
        "RESERVATION_KEY_PREFIX": prefix,
        "RESERVATION_DATA_DIR": str(workdir),
        "RESERVATION_SESSION_SECRET": SESSION_SECRET,
        **env,
    }
    log = workdir / f"server-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "reservation", "serve", "--port", str(port), *args],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/readyz", "reservation serve", 30, exited=process.poll, log=log)
    except BaseException:
        stop_process(process)
        raise
    return Server(url, prefix, database, process, log=log)


def stop_server(server: Server, mongodb_uri: str) -> None:
    stop_process(server.process)
    forget_run(server.prefix, server.database, mongodb_uri)


def forget_run(prefix: str, database: str, mongodb_uri: str) -> None:
    """Delete what a served process left in the shared stores: its Redis keys (a leftover
    crowd of keys makes every later SCAN of the test Redis slower) and its database."""
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()
    mongo: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(mongodb_uri)
    mongo.drop_database(database)
    mongo.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """`reservation serve` paying through a Stripe simulator of its own, behind a pretended
    proxy: each buyer of the tests can send an X-Forwarded-For of their own (its default rate
    limits count each address on its own; a request without one counts under 127.0.0.1)."""
    with simulators() as make_sim:
        sim = make_sim()
        running = start_server(
            tmp_path_factory.mktemp("serve"),
            mongodb_uri,
            STRIPE_SECRET_KEY=API_KEY,
            STRIPE_API_BASE=sim.url,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            RESERVATION_TRUSTED_PROXY_HEADER="X-Forwarded-For",
        )
        running.sim = sim
        try:
            yield running
        finally:
            stop_server(running, mongodb_uri)
