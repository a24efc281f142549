"""The `reservation` command line as users run it: the console script in a subprocess.

Each test has a key prefix and a MongoDB database of its own, passed to the command through
the environment exactly as a user would set it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode

from domain.outcomes import Held, OverCustomerLimit
from domain.products import ProductSpec
from harness.servers import free_port
from persistence.mongo import connect, ensure_indexes
from persistence.products import ProductRepository
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace
from reservation.usecases.catalog import Catalog
from tests.conftest import REDIS_URL

# What Settings reads: the test machine's own configuration must not leak into the commands.
CONFIGURATION = ("REDIS_", "MONGODB_", "RESERVATION_", "STRIPE_", "PUBLIC_URL", "WEB_CONCURRENCY")
READY = "reservation: ready at "
TEE = ProductSpec(name="Black tee", price=2500, currency="eur", stock=10, pool="drop")


def environment(**variables: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(CONFIGURATION)}
    return {**inherited, **variables}


async def reservation(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `python -m reservation ARGS` with exactly `env` as configuration."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "reservation", *args],
        capture_output=True,
        text=True,
        check=False,
        env=environment(**env),
    )


@dataclass
class Stores:
    """The Redis key space and MongoDB database of one test, and the variables naming them."""

    env: dict[str, str]
    keys: KeySpace
    inventory: Inventory
    products: ProductRepository
    catalog: Catalog

    def without(self, *names: str) -> dict[str, str]:
        return {k: v for k, v in self.env.items() if k not in names}

    async def keys_written(self) -> list[bytes]:
        return [key async for key in self.inventory.client.scan_iter(match=self.keys.pattern())]


@pytest.fixture
async def stores(mongodb_uri: str) -> AsyncIterator[Stores]:
    keys = KeySpace(f"cli-{uuid.uuid4().hex[:10]}")
    database = f"cli_{uuid.uuid4().hex[:10]}"
    client = Redis.from_url(REDIS_URL)
    mongo, db = connect(mongodb_uri, database)
    await ensure_indexes(db)
    inventory = Inventory(client, keys=keys)
    products = ProductRepository(db)
    try:
        yield Stores(
            env={
                "REDIS_URL": REDIS_URL,
                "MONGODB_URI": mongodb_uri,
                "MONGODB_DATABASE": database,
                "RESERVATION_KEY_PREFIX": keys.prefix,
            },
            keys=keys,
            inventory=inventory,
            products=products,
            catalog=Catalog(products, inventory),
        )
    finally:
        async for key in client.scan_iter(match=keys.pattern(), count=1000):
            await client.delete(key)
        await client.aclose()
        await mongo.drop_database(database)
        await mongo.close()


# -- stock and set-stock refuse to guess ---------------------------------------------------------

NO_REDIS = "REDIS_URL is not set"
NO_MONGO = "MONGODB_URI is not set"


@pytest.mark.parametrize(
    ("args", "unset", "named"),
    [
        (("stock", "--pool", "drop"), ("REDIS_URL",), (NO_REDIS,)),
        (("set-stock", "tee", "4"), ("REDIS_URL",), (NO_REDIS,)),
        (("set-stock", "tee", "4"), ("MONGODB_URI",), (NO_MONGO,)),
        (("set-stock", "tee", "4"), ("REDIS_URL", "MONGODB_URI"), (NO_REDIS, NO_MONGO)),
    ],
)
async def test_without_the_stores_serve_uses_the_commands_refuse(
    stores: Stores, args: tuple[str, ...], unset: tuple[str, ...], named: tuple[str, ...]
) -> None:
    await stores.catalog.put("tee", TEE)
    done = await reservation(*args, env=stores.without(*unset))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    message = done.stderr
    for missing in (NO_REDIS, NO_MONGO):
        assert (missing in message) == (missing in named)
    if NO_REDIS in named:
        assert "inside the serve process" in message
        assert "GET /v1/products" in message
        assert "PUT /v1/products/{sku}" in message
    if NO_MONGO in named:
        assert "PUT /v1/products/{sku}" in message
    product = await stores.products.get("tee")
    assert product is not None
    assert product.stock == 10
    (level,) = await stores.inventory.stock.levels(["tee"], pool="drop")
    assert level.total == 10


# -- set-stock writes through the catalog -------------------------------------------------------


async def test_set_stock_writes_mongodb_then_redis_and_keeps_the_product(stores: Stores) -> None:
    await stores.catalog.put(
        "tee",
        ProductSpec(
            name="Black tee", price=2500, currency="eur", stock=10, pool="drop", max_per_customer=2
        ),
    )
    held = await stores.inventory.holds.reserve([("tee", 1)], customer_id="cus_1")
    assert isinstance(held, Held)

    done = await reservation("set-stock", "tee", "4", env=stores.env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "tee: total=4 reserved=1 sold=0 available=3"
    product = await stores.products.get("tee")
    assert product is not None
    assert (product.stock, product.name, product.price, product.currency, product.pool) == (
        4,
        "Black tee",
        2500,
        "eur",
        "drop",
    )
    assert product.max_per_customer == 2  # omitted: kept

    shown = await reservation("stock", "--pool", "drop", env=stores.env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1].split() == ["tee", "4", "1", "0", "3"]
    # Reconcile rebuilds Redis from the catalog: it finds nothing to undo.
    checked = await reservation("reconcile", "--dry-run", env=stores.env)
    assert checked.returncode == 0, checked.stderr
    assert "0 of 1 SKUs changed" in checked.stdout

    # The limit of 2 still holds in Redis, until 0 removes it in both stores.
    over = await stores.inventory.holds.reserve([("tee", 2)], customer_id="cus_1")
    assert isinstance(over, OverCustomerLimit)
    done = await reservation("set-stock", "tee", "4", "--max-per-customer", "0", env=stores.env)
    assert done.returncode == 0, done.stderr
    product = await stores.products.get("tee")
    assert product is not None
    assert product.max_per_customer is None
    assert isinstance(await stores.inventory.holds.reserve([("tee", 2)], customer_id="cus_1"), Held)


async def test_set_stock_of_an_unknown_or_invalid_sku_writes_nothing(stores: Stores) -> None:
    done = await reservation("set-stock", "ghost", "4", env=stores.env)
    assert done.returncode == 2
    assert "unknown SKU ghost" in done.stderr
    assert "PUT /v1/products/ghost" in done.stderr
    assert "Traceback" not in done.stderr
    bad = await reservation("set-stock", "te{e}", "4", env=stores.env)
    assert bad.returncode == 2
    assert "sku must be 1 to 64 characters" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert await stores.products.list() == []
    assert await stores.keys_written() == []


async def test_set_stock_keeps_the_products_pool(stores: Stores) -> None:
    await stores.catalog.put("tee", TEE)
    refused = await reservation("set-stock", "tee", "4", "--pool", "default", env=stores.env)
    assert refused.returncode == 2
    assert "tee is in pool drop, not default" in refused.stderr
    product = await stores.products.get("tee")
    assert product is not None
    assert (product.stock, product.pool) == (10, "drop")
    assert await stores.inventory.stock.levels(pool="default") == []
    done = await reservation("set-stock", "tee", "4", "--pool", "drop", env=stores.env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "tee: total=4 reserved=0 sold=0 available=4"


async def test_set_stock_reports_core_errors_as_code_and_message(stores: Stores) -> None:
    await stores.catalog.put("tee", TEE)
    assert isinstance(await stores.inventory.holds.reserve([("tee", 3)]), Held)
    done = await reservation("set-stock", "tee", "2", env=stores.env)
    assert done.returncode == 2
    assert "stock_below_committed: stock of tee cannot go below reserved + sold" in done.stderr
    assert "Traceback" not in done.stderr
    # The catalog write is undone when Redis refuses, as for PUT /v1/products/{sku}.
    product = await stores.products.get("tee")
    assert product is not None
    assert product.stock == 10


@pytest.mark.parametrize("flag", ["1", "True", "on"])
async def test_the_cluster_flag_is_read_as_serve_reads_it(
    stores: Stores, cluster_ports: list[int], flag: str
) -> None:
    await stores.products.upsert(
        "tee", name="Black tee", price=2500, currency="eur", stock=10, pool="drop"
    )
    cluster = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port) for port in cluster_ports])
    await cluster.initialize()
    try:
        # Point REDIS_URL at a node that does not own the pool's slot: only a cluster client,
        # following the redirection, can write the pool there.
        owner = cluster.get_node_from_key(stores.keys.pool("drop").stock)
        assert owner is not None
        port = next(port for port in cluster_ports if port != owner.port)
        env = {**stores.env, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        # Without the flag a plain client is redirected (MOVED) and gets nowhere.
        plain = await reservation("set-stock", "tee", "4", env=env)
        assert plain.returncode == 2, plain.stdout
        assert "storage_unavailable" in plain.stderr

        done = await reservation("set-stock", "tee", "4", env={**env, "REDIS_CLUSTER": flag})
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "tee: total=4 reserved=0 sold=0 available=4"
        shown = await reservation("stock", "--pool", "drop", env={**env, "REDIS_CLUSTER": flag})
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[1].split() == ["tee", "4", "0", "0", "4"]
    finally:
        for node in cluster.get_primaries():
            async for key in cluster.scan_iter(match=stores.keys.pattern(), target_nodes=node):
                await cluster.delete(key)
        await cluster.aclose()


# -- serve says when it is ready -----------------------------------------------------------------


class Serving:
    """`reservation serve` with its stdout read line by line as it comes."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        assert process.stdout is not None
        self.process = process
        self.url = url
        self.stdout = process.stdout
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, prefix: str) -> list[str]:
        """Every line printed up to and including the first that starts with `prefix`."""
        seen: list[str] = []
        while True:
            # A guard against a server that hangs, never a measure of speed.
            line = self.lines.get(timeout=120)
            assert line is not None, f"serve exited before {prefix!r}: {seen}"
            seen.append(line)
            if line.startswith(prefix):
                return seen


@contextlib.contextmanager
def serving(workdir: Path, *args: str, **env: str) -> Iterator[Serving]:
    """`reservation serve ARGS` on a free port, configured by `env` alone; stopped afterwards."""
    port = free_port()
    log = (workdir / f"serve-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "reservation", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=environment(RESERVATION_DATA_DIR=str(workdir / "data"), **env),
        cwd=workdir,
        start_new_session=True,
    )
    log.close()
    server = Serving(process, f"http://127.0.0.1:{port}")
    try:
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=60)
        # Whatever it left running (workers, the embedded MongoDB) is in its process group,
        # and would keep its stdout open.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        server.reader.join()
        server.stdout.close()


def terminate(server: Serving) -> int:
    """Stop the server as a process manager does (SIGTERM); its exit status."""
    server.process.send_signal(signal.SIGTERM)
    return server.process.wait(timeout=60)


def test_serve_says_ready_once_it_answers_and_where_embedded_data_lives(tmp_path: Path) -> None:
    with serving(tmp_path) as server:
        lines = server.until(READY)
        # Nothing else has been tried: the first request after the line must be answered.
        answer = httpx.get(f"{server.url}/healthz")
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok"}
        assert lines[-1] == f"{READY}{server.url}"
        (redis_line,) = (line for line in lines if line.startswith("embedded Redis"))
        assert "fakeredis" in redis_line
        assert "inside this process" in redis_line
        assert "nothing is kept on disk" in redis_line
        (mongo_line,) = (line for line in lines if line.startswith("embedded MongoDB"))
        assert mongo_line.endswith(f"data in {tmp_path / 'data'}")
        mongo_port = int(mongo_line.split("mongodb://127.0.0.1:")[1].split(",")[0])

        assert terminate(server) == 0
        # The embedded MongoDB went with it.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", mongo_port)).close()


def test_serve_with_workers_says_ready_once_every_worker_answers(
    tmp_path: Path, stores: Stores
) -> None:
    with serving(tmp_path, "--workers", "2", **stores.env) as server:
        lines = server.until(READY)
        assert lines == [f"{READY}{server.url}"]  # configured stores: nothing embedded
        for _ in range(20):  # fresh connections, shared out between the workers
            assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert terminate(server) == 0


# -- serve leaves no process behind --------------------------------------------------------------


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


@pytest.mark.parametrize(
    ("signum", "when", "workers"),
    [
        (signal.SIGTERM, "ready", 1),
        (signal.SIGINT, "ready", 1),
        (signal.SIGTERM, "starting", 1),
        (signal.SIGINT, "starting", 1),
        (signal.SIGTERM, "ready", 2),
        (signal.SIGINT, "ready", 2),
    ],
    ids=[
        "sigterm",
        "sigint",
        "sigterm-while-starting",
        "sigint-while-starting",
        "sigterm-2-workers",
        "sigint-2-workers",
    ],
)
def test_serve_with_the_embedded_mongodb_leaves_no_process_behind(
    tmp_path: Path, redis_only: dict[str, str], signum: int, when: str, workers: int
) -> None:
    """SIGTERM (a process manager) or SIGINT (Ctrl+C) to `reservation serve` ends every process
    it started: the embedded nx-27017, and the workers."""
    env = redis_only if workers > 1 else {}  # more than one worker needs a shared Redis
    with serving(tmp_path, "--workers", str(workers), **env) as server:
        if when == "starting":
            # The embedded MongoDB is up; the workers' lifespans are still to run.
            server.until("embedded MongoDB")
        else:
            server.until(READY)
        started = _descendants(server.process.pid)
        if when == "ready":
            # nx-27017, and with several workers each worker: all children of serve.
            commands = [" ".join(child.cmdline()) for child in started]
            assert any("nx-27017" in command for command in commands), commands
            assert len(started) >= 1 + (workers if workers > 1 else 0)
        server.process.send_signal(signum)
        assert server.process.wait(timeout=60) == 0
        _, alive = psutil.wait_procs(started, timeout=15)
        assert alive == []
        # Nothing started after the snapshot survives either: no process runs on its data.
        data = str(tmp_path / "data")
        left = [
            process.info["pid"]
            for process in psutil.process_iter(["pid", "cmdline"])
            if any(data in part for part in process.info["cmdline"] or ())
        ]
        assert left == []


@pytest.fixture
async def redis_only(stores: Stores) -> dict[str, str]:
    """The test's Redis, and no MONGODB_URI: serve starts its embedded MongoDB."""
    return stores.without("MONGODB_URI", "MONGODB_DATABASE")
