"""What the live stock feed costs Redis with 10 and with 2,000 open event streams.

`reservation serve` (1 worker) runs against a redis-server of this benchmark's own on a free
port, so that no other client's commands are counted (INFO commandstats counts every client).
A driver makes holds of one unit at `--changes` a second (100; up to 32 in flight, so that a
slow answer does not slow the pace): each hold is a change of the stock. Three windows of
`--seconds` (10) each, the driver running throughout:

- 0 streams: the driver alone, which gives what one hold costs Redis (all commands, and FCALLs:
  one, the reserve script);
- 10 streams, then 2,000, on one SKU (raw asyncio connections: loadtests/stream_clients.py).

The feed's share of a window is measured two ways: its product scripts (FCALLs of the window
less one per hold the driver made), and every command of the window less what the holds cost
in the first window. The issue's claim is that both are the same at 10 and at 2,000 streams:
one reader per watched SKU per process. Beside them: the feed's reads as the server counts them
(`reservation_stock_feed_reads`), the events delivered, the CPU of the server, of this process
and of Redis, and the server's memory. After each window the benchmark checks that every stream
shows the final stock.

    python -m loadtests.bench_stream [--seconds 10] [--changes 100] [--streams 10 2000]

Writes docs/benchmarks/stream.md, stream.json and stream.png.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from harness.servers import REDIS_SERVER, RedisServer
from loadtests.cpu import cpu_seconds, process_tree, redis_cpu_seconds
from loadtests.http_servers import Server, serving
from loadtests.machine import machine_info, run_loop
from loadtests.stream_clients import Driver, Watcher
from loadtests.stream_report import Row, report
from reservation.server.open_files import raise_open_files_limit

SKU = "live"
STOCK = 10**9
ADMIN_TOKEN = "bench-stream-admin"
OPENING_AT_ONCE = 200
SETTLE_SECONDS = 1.0  # streams open and the driver at its pace before a window starts
FINAL_WAIT = 60.0


def server_env(redis_url: str, workdir: Path) -> dict[str, str]:
    """The service as it runs in production, less what would put other commands in the window:
    no sweeper, no rebuild check (each asks Redis now and then); and without the shares of one
    client address (every stream comes from 127.0.0.1)."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "RESERVATION_ADMIN_TOKEN": ADMIN_TOKEN,
        "RESERVATION_KEY_PREFIX": "bench-stream",
        "RESERVATION_DATA_DIR": str(workdir / "data"),
        "RESERVATION_SWEEP_SECONDS": "0",
        "RESERVATION_REBUILD_CHECK_SECONDS": "0",
        "RESERVATION_MAX_CONNECTIONS_PER_CLIENT": "0",
        "RESERVATION_MAX_REQUESTS_PER_CLIENT": "0",
        "RESERVATION_IP_RATE_LIMIT": "0",
    }


async def command_calls(redis: Redis) -> dict[str, int]:
    info: dict[str, Any] = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in info.items()}


async def feed_reads(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    (line,) = [
        line for line in text.splitlines() if line.startswith("reservation_stock_feed_reads ")
    ]
    return float(line.split()[-1])


def rss_mib(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def open_streams(url: str, count: int) -> tuple[list[Watcher], list[asyncio.Task[None]]]:
    watchers = [Watcher() for _ in range(count)]
    tasks: list[asyncio.Task[None]] = []
    for start in range(0, count, OPENING_AT_ONCE):
        batch = watchers[start : start + OPENING_AT_ONCE]
        tasks += [asyncio.create_task(watcher.watch(url, SKU)) for watcher in batch]
        await asyncio.wait_for(asyncio.gather(*(w.first.wait() for w in batch)), 60)
    return watchers, tasks


async def all_final(watchers: Sequence[Watcher], final: int) -> bool:
    """Whether every stream comes to show `final` (within FINAL_WAIT)."""
    deadline = time.monotonic() + FINAL_WAIT
    while time.monotonic() < deadline:
        if all(watcher.available == final for watcher in watchers):
            return True
        await asyncio.sleep(0.1)
    return False


async def window(
    server: Server, redis: Redis, client: httpx.AsyncClient, streams: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One window of `args.seconds` with `streams` open and the driver running: the raw counts."""
    pids = process_tree(server.process.pid)
    watchers, tasks = await open_streams(server.url, streams)
    driver = Driver(server.url, SKU, args.changes)
    driving = asyncio.create_task(driver.run())
    try:
        await asyncio.sleep(SETTLE_SECONDS)
        # The scrape of /metrics asks Redis too: before the first INFO, after the last.
        reads_before = await feed_reads(client)
        # No hold in flight while Redis' counts are read: each hold is inside or outside.
        async with driver.paused():
            calls_before, holds_before = await command_calls(redis), driver.holds
        events_before = sum(w.events for w in watchers)
        cpu_before = (cpu_seconds(pids), own_cpu_seconds(), await redis_cpu_seconds(redis))
        started = time.monotonic()
        await asyncio.sleep(args.seconds)
        elapsed = time.monotonic() - started
        async with driver.paused():
            calls_after, holds_after = await command_calls(redis), driver.holds
        cpu_after = (cpu_seconds(pids), own_cpu_seconds(), await redis_cpu_seconds(redis))
        events_after = sum(w.events for w in watchers)
        reads_after = await feed_reads(client)
        rss = rss_mib(pids)
    finally:
        driver.stop.set()
        await driving
    product = (await client.get(f"/v1/products/{SKU}")).json()
    final_ok = await all_final(watchers, product["available"])
    for watcher in watchers:
        watcher.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    calls = {
        name: calls_after[name] - calls_before.get(name, 0)
        for name in calls_after
        if name != "info" and calls_after[name] != calls_before.get(name, 0)
    }
    cpu = [100 * (b - a) / elapsed for a, b in zip(cpu_before, cpu_after, strict=True)]
    return {
        "streams": streams,
        "seconds": elapsed,
        "holds": holds_after - holds_before,
        "calls": calls,
        "feed_reads": reads_after - reads_before,
        "events": events_after - events_before,
        "server_cpu": cpu[0],
        "client_cpu": cpu[1],
        "redis_cpu": cpu[2],
        "server_rss_mib": rss,
        "all_final": final_ok,
    }


async def bench(args: argparse.Namespace, workdir: Path) -> int:
    own = RedisServer(workdir / "redis")
    own.start()
    redis = Redis.from_url(own.url)
    try:
        info = await machine_info(redis)
        async with (
            serving("app", server_env(own.url, workdir), workdir) as server,
            httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        ):
            body = {"name": "Live", "price": 1500, "currency": "eur", "stock": STOCK}
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            (await client.put(f"/v1/products/{SKU}", json=body, headers=admin)).raise_for_status()
            windows = []
            for streams in (0, *args.streams):
                print(f"window: {streams} streams, {args.seconds:g} s ...", flush=True)
                windows.append(await window(server, redis, client, streams, args))
    finally:
        await redis.aclose()
        own.stop()
    rows = Row.of(windows)
    report(rows, info, args)
    return 0 if all(row.all_final for row in rows) else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each window (10)")
    parser.add_argument("--changes", type=float, default=100.0, help="holds per second (100)")
    parser.add_argument(
        "--streams", type=int, nargs="+", default=[10, 2000], help="streams per window"
    )
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the rows here")
    parser.add_argument("--note", default="", help="the conditions of the run, for the report")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if REDIS_SERVER is None:
        print("redis-server not found: this benchmark runs a Redis of its own", file=sys.stderr)
        return 2
    raise_open_files_limit()  # each stream is a connection, each connection a file
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as temp:
        return run_loop(bench(args, Path(temp)))


if __name__ == "__main__":
    sys.exit(main())
