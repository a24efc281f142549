"""Measuring the HTTP benchmark's cases: a warm-up and a window per case under the load
generator, with the CPU and the server's counters read around each window."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from loadtests import cpu
from loadtests.cpu import Cpu
from loadtests.http_cases import CASES, LISTED_SKUS, SKU, SOLD_OUT_SKU, STOCK, UNCOUNTED, Case, Load
from loadtests.http_redis import commands_processed, redis_port, watching
from loadtests.http_servers import Server, serving
from loadtests.http_tally import Tally, answered, quiesce, reserved
from loadtests.http_tokens import SECRET
from loadtests.httpx_driver import run_httpx
from loadtests.reporting import fmt
from loadtests.wrk_driver import run_wrk, write_script

WARMUP_SECONDS = 2


@dataclass(frozen=True, slots=True)
class RedisAsked:
    """What a window asked of Redis (loadtests/http_redis.py)."""

    commands_per_request: float | None  # INFO total_commands_processed moved / requests
    server_connections: int  # the most the server's processes held to Redis at once
    connected_clients: int  # the most clients Redis had at once (every client of it)


@dataclass(frozen=True, slots=True)
class Row:
    """One case; the first seven fields are the JSON row."""

    case: str
    requests_per_second: float
    p50_ms: float | None
    p99_ms: float | None
    ratio_to_floor: float | None
    redis_commands_per_request: float | None
    server_redis_connections: int
    connections: int
    requests: int
    non_2xx: int
    socket_errors: int
    expected_status: int
    cpu: Cpu
    connected_clients: int

    def as_json(self) -> dict[str, Any]:
        row = asdict(self)
        for extra in ("requests", "non_2xx", "socket_errors", "expected_status", "cpu"):
            del row[extra]
        return row


@dataclass
class Driver:
    """Runs the load generator the same way for every case: wrk, else the httpx clients."""

    connections: int
    workdir: Path
    use_wrk: bool

    async def load(self, url: str, case: Case, seconds: int) -> Load:
        connections = case.load_connections(self.connections)
        if self.use_wrk:
            return await run_wrk(url, write_script(case, self.workdir), seconds, connections)
        return await run_httpx(url, case, seconds, connections)


@dataclass
class Run:
    """Everything one benchmark run shares."""

    args: argparse.Namespace
    driver: Driver
    redis: Redis
    prefix: str
    database: str
    token: str
    mongodb_uri: str
    mongo_pid: int | None  # the embedded nx-27017, when this run started one
    workdir: Path
    notes: list[str] = field(default_factory=list)
    tallies: list[Tally] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_URL": self.args.redis_url,
            "MONGODB_URI": self.mongodb_uri,
            "MONGODB_DATABASE": self.database,
            "RESERVATION_ADMIN_TOKEN": self.token,
            "RESERVATION_KEY_PREFIX": self.prefix,
            "RESERVATION_DATA_DIR": str(self.workdir / "data"),
            # wrk sends everything from 127.0.0.1: the reserve path is measured without the
            # limit per client address (its bodies carry no customer id, so nothing else limits).
            "RESERVATION_IP_RATE_LIMIT": "0",
            # Nor do the shares of one address refuse it (3,000 connections, each a request in
            # flight); they are still counted, so their cost is measured, in the floor too.
            "RESERVATION_MAX_REQUESTS_PER_CLIENT": str(10**9),
            "RESERVATION_MAX_CONNECTIONS_PER_CLIENT": str(10**9),
            # The token cases' buyers are verified (HS256, loadtests/http_tokens.py); no limit
            # per customer refuses them (a buyer's token may be sent many times in a window).
            "RESERVATION_CUSTOMER_TOKEN_SECRET": SECRET,
            "RESERVATION_CUSTOMER_RATE_LIMIT": "0",
            "RESERVATION_MAX_HOLDS_PER_CUSTOMER": "0",
        }

    @contextlib.asynccontextmanager
    async def serving(self, kind: str) -> AsyncIterator[Server]:
        """One server of this run; its log is kept for the report's notes."""
        async with serving(kind, self.env(), self.workdir) as server:
            self.logs.append(server.log)
            yield server


def api_client(base_url: str, seconds: float = 10.0, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=seconds, headers=headers)


async def measure(run: Run, server: Server, case: Case) -> tuple[Load, Cpu, Tally, RedisAsked]:
    """Warm up, then one window, with the server's counters read around it."""
    url = server.url + case.path
    await run.driver.load(url, case, WARMUP_SECONDS)
    async with api_client(server.url) as http:
        await quiesce(http, case)
        before = await reserved(http, case.counts_sku) if case.counts_sku else 0
        statuses = await answered(http, case.route) if case.route else Counter[str]()
        pids = cpu.process_tree(server.process.pid)
        port = redis_port(run.args.redis_url)
        async with watching(run.redis, pids, port) as watch:
            commands_before = await commands_processed(run.redis)
            cpu_before = await cpu.snapshot(run.redis, pids, run.mongo_pid)
            began = time.perf_counter()
            load = await run.driver.load(url, case, run.args.seconds)
            wall = time.perf_counter() - began
            cpu_after = await cpu.snapshot(run.redis, pids, run.mongo_pid)
            commands = await commands_processed(run.redis) - commands_before
        await quiesce(http, case)
        after = await reserved(http, case.counts_sku) if case.counts_sku else 0
        if case.route:
            statuses = await answered(http, case.route) - statuses
    tally = Tally(
        case.name,
        case.expected_status,
        load.requests - load.non_2xx,
        load.non_2xx,
        dict(statuses) if case.route else None,
        after - before if case.counts_sku else None,
        case.load_connections(run.args.connections),
        "" if case.route else UNCOUNTED[case.server],
    )
    asked = RedisAsked(
        commands / load.requests if load.requests else None,
        watch.server_connections,
        watch.connected_clients,
    )
    return load, cpu.usage(cpu_before, cpu_after, wall), tally, asked


def row_of(case: Case, load: Load, usage: Cpu, asked: RedisAsked, connections: int) -> Row:
    return Row(
        case=case.name,
        requests_per_second=load.per_second,
        p50_ms=load.p50_ms,
        p99_ms=load.p99_ms,
        ratio_to_floor=None,
        redis_commands_per_request=asked.commands_per_request,
        server_redis_connections=asked.server_connections,
        connections=case.load_connections(connections),
        requests=load.requests,
        non_2xx=load.non_2xx,
        socket_errors=load.socket_errors,
        expected_status=case.expected_status,
        cpu=usage,
        connected_clients=asked.connected_clients,
    )


def with_ratios(rows: Sequence[Row]) -> list[Row]:
    floor = next((row.requests_per_second for row in rows if row.case == "floor"), None)
    return [
        replace(row, ratio_to_floor=row.requests_per_second / floor if floor else None)
        for row in rows
    ]


async def setup_products(server: Server, token: str) -> None:
    async with api_client(server.url, authorization=f"Bearer {token}") as http:
        others = [(f"shelf-{n:02d}", 100) for n in range(LISTED_SKUS - 2)]
        for sku, stock in ((SKU, STOCK), (SOLD_OUT_SKU, 0), *others):
            body = {"name": sku, "price": 1000, "currency": "eur", "stock": stock}
            (await http.put(f"/v1/products/{sku}", json=body)).raise_for_status()


def selected(run: Run) -> list[Case]:
    """The cases of this run (--cases), in the order of CASES."""
    names = run.args.cases
    return [case for case in CASES if names is None or case.name in names]


async def run_cases(run: Run) -> list[Row]:
    rows: dict[str, Row] = {}
    cases = selected(run)
    stocked = False
    for _ in range(run.args.rounds):
        for kind in ("app", "floor", "app2", "app_unpacked"):
            if not any(case.server == kind for case in cases):
                continue
            async with run.serving(kind) as server:
                if kind != "floor" and not stocked:
                    await setup_products(server, run.token)
                    stocked = True
                for case in (c for c in cases if c.server == kind):
                    load, usage, tally, asked = await measure(run, server, case)
                    row = row_of(case, load, usage, asked, run.args.connections)
                    run.tallies.append(tally)
                    print_progress(row, tally)
                    best = rows.get(case.name)
                    if best is None or row.requests_per_second > best.requests_per_second:
                        rows[case.name] = row  # each case's best round
    return with_ratios([rows[case.name] for case in cases])


def print_progress(row: Row, tally: Tally) -> None:
    print(
        f"{row.case:>24} {row.requests_per_second:>9,.0f} req/s  p50 {fmt(row.p50_ms)} ms"
        f"  p99 {fmt(row.p99_ms)} ms  non-2xx {row.non_2xx}  socket errors {row.socket_errors}"
        f"  cpu server/wrk/redis/mongo {row.cpu.text()}"
        f"  redis: {fmt(row.redis_commands_per_request)} commands/request,"
        f" {row.server_redis_connections} connections of the server"
        f" ({row.connected_clients} clients in all)"
        f"  | {tally.text()}",
        file=sys.stderr,
        flush=True,
    )
