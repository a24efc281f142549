"""The waiting room's front door without Locust: `python -m loadtests.room_wave`.

    python -m loadtests.room_wave [--seconds 10] [--connections 256] [--workers 2]
        [--buyers 40000] [--report-dir docs/benchmarks/spike]

Starts the rehearsal's stack (loadtests/sale_stack.py: its own Redis and MongoDB, the
simulator, `reservation serve --workers W` verifying customer tokens, rate limits on behind
X-Forwarded-For), puts the hot SKU in a waiting room whose sale starts in an hour, and has wrk
(C, loadtests/wrk_driver.py) join the room for --seconds: every request a new buyer (a token of
its own, an address of its own) on a new connection (`Connection: close`), as a crowd's first
requests are. It prints, and writes to room-wave.json, the joins answered per second, the
non-2xx answers and socket errors, p50/p99, the CPU of the service and of wrk, and the room's
count of waiting tickets.

What it shows: how many joins a second the service takes on this machine when the load
generator costs a fraction of Locust's CPU per request. The spike search's room-on sales
(loadtests/spike_room.py) are Locust's, and a spike of 20,000 buyers within 10 s asks for
2,000 joins a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from harness.customer_tokens import mint
from loadtests import run_flash_sale
from loadtests.cpu import children_cpu_seconds
from loadtests.sale_locust import CpuWatch
from loadtests.sale_stack import Stack, start_stack, stores
from loadtests.wrk_driver import WRK_DONE, run_wrk

DOCS = run_flash_sale.DOCS / "spike"
SKU = "hot"


def wave_script(stack: Stack, buyers: int, path: Path) -> Path:
    """wrk's Lua: each request the next buyer's join, from an address of its own, and the
    connection closed after it (the next buyer opens a new one)."""
    ids = [f"cus_wave_{n:06d}" for n in range(buyers)]
    tokens = ",".join(f'"Bearer {mint(i, stack.customer_token_secret)}"' for i in ids)
    bodies = ",".join(f"'{json.dumps({'customer_id': i})}'" for i in ids)
    path.write_text(
        "\n".join(
            [
                f"tokens = {{{tokens}}}",
                f"bodies = {{{bodies}}}",
                "local threads = 0",
                "setup = function(thread)",
                f"  thread:set('cursor', threads * {buyers // 2})",
                "  threads = threads + 1",
                "end",
                "request = function()",
                "  cursor = cursor % #tokens + 1",
                "  local address = string.format('%d.%d.%d.%d', math.random(1, 223),",
                "    math.random(0, 255), math.random(0, 255), math.random(1, 254))",
                "  local headers = {['Authorization'] = tokens[cursor],",
                "    ['Content-Type'] = 'application/json', ['Connection'] = 'close',",
                "    ['X-Forwarded-For'] = address}",
                f"  return wrk.format('POST', '/v1/queue/{SKU}', headers, bodies[cursor])",
                "end",
            ]
        )
        + "\n"
        + WRK_DONE
    )
    return path


def put_room(stack: Stack) -> None:
    """The hot SKU, in a room whose sale starts in an hour: every join waits, none admits."""
    starts = datetime.now(UTC) + timedelta(hours=1)
    body = {
        "name": "The drop",
        "price": 4900,
        "currency": "eur",
        "stock": 100,
        "waiting_room": {"admit_per_second": 20, "max_active": 100, "admission_seconds": 120},
        "sale_starts_at": starts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    with httpx.Client(base_url=stack.service_url, headers=headers, timeout=30) as http:
        http.put(f"/v1/products/{SKU}", json=body).raise_for_status()


def waiting(stack: Stack) -> int:
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    with httpx.Client(base_url=stack.service_url, headers=headers, timeout=60) as http:
        found = http.get(f"/v1/queue/{SKU}")
        found.raise_for_status()
        return int(found.json()["waiting"])


def wave(args: argparse.Namespace) -> dict[str, object]:
    sale = run_flash_sale.parse_args(["--workers", str(args.workers)])
    with tempfile.TemporaryDirectory(prefix="room-wave-") as temp:
        stack = Stack(Path(temp))
        with stores(stack, cluster=False) as (redis_url, mongodb_uri):
            try:
                start_stack(stack, sale, redis_url, mongodb_uri)
                put_room(stack)
                script = wave_script(stack, args.buyers, Path(temp) / "wave.lua")
                watch = CpuWatch({"service": stack.processes[1].pid, "run": os.getpid()})
                wrk_before, started = children_cpu_seconds(), time.monotonic()
                watch.start()
                load = asyncio.run(
                    run_wrk(stack.service_url, script, args.seconds, args.connections)
                )
                watch.stop()
                wrk_cpu = (children_cpu_seconds() - wrk_before) / (time.monotonic() - started)
                tickets = waiting(stack)
            finally:
                stack.stop()
    return {
        "seconds": args.seconds,
        "connections": args.connections,
        "workers": args.workers,
        **asdict(load),
        "joins per second": load.requests / load.seconds,
        "waiting tickets": tickets,
        "wrk cpu %": 100 * wrk_cpu,
        **watch.shares(),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.room_wave", description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--buyers", type=int, default=40_000, help="distinct buyers (tokens)")
    parser.add_argument("--report-dir", type=Path, default=DOCS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    found = wave(args)
    args.report_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / "room-wave.json").write_text(json.dumps(found, indent=2) + "\n")
    print(json.dumps(found, indent=2))
    return 0 if not found["non_2xx"] and not found["socket_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
