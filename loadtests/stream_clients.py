"""The watchers and the driver of the event stream benchmark (loadtests/bench_stream.py).

A watcher is one `GET /v1/products/{sku}/events` on a raw asyncio connection: it counts the
`stock` events it receives and keeps the last `available`. Raw sockets rather than an HTTP
client library, so that 2,000 of them cost this process little CPU, and the server's and
Redis' figures are not those of a machine busy parsing on the client's side. The driver makes
holds of one unit at a steady pace, each a change of the stock every stream sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

IN_FLIGHT = 32
EVENT = b"event: stock"
DATA = b"data: "


@dataclass
class Watcher:
    """One open stream: the events it received so far and the last value."""

    events: int = 0
    available: int | None = None
    first: asyncio.Event = field(default_factory=asyncio.Event)
    writer: asyncio.StreamWriter | None = None

    async def watch(self, url: str, sku: str) -> None:
        address = urlsplit(url)
        assert address.hostname is not None
        reader, self.writer = await asyncio.open_connection(address.hostname, address.port)
        self.writer.write(
            f"GET /v1/products/{sku}/events HTTP/1.1\r\nHost: bench\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"stream refused: {head[:200]!r}")
        tail = b""
        while chunk := await reader.read(65536):
            text = tail + chunk
            # An event is one chunk of the chunked answer, so it arrives whole in practice;
            # the tail keeps one cut by a read from being counted twice or lost.
            cut = text.rfind(b"\r\n\r\n")
            whole, tail = (text[: cut + 4], text[cut + 4 :]) if cut >= 0 else (b"", text)
            found = whole.count(EVENT)
            if found:
                self.events += found
                data = whole[whole.rfind(DATA) + len(DATA) :].split(b"\r\n", 1)[0]
                self.available = json.loads(data)["available"]
                self.first.set()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Driver:
    """Holds of one unit at `per_second` (up to IN_FLIGHT at once, so a slow answer does not
    slow the pace), until stopped: the stock changes that often. `paused()` waits for every
    hold in flight and starts none meanwhile, so a count taken inside it is exact."""

    url: str
    sku: str
    per_second: float
    holds: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    running: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self) -> None:
        self.running.set()
        interval = 1 / self.per_second
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            next_at = time.monotonic()
            while not self.stop.is_set():
                await self.running.wait()
                if len(self.in_flight) < IN_FLIGHT:
                    task = asyncio.create_task(self.hold(client))
                    self.in_flight.add(task)
                    task.add_done_callback(self.in_flight.discard)
                next_at = max(next_at + interval, time.monotonic() - 1)
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await asyncio.gather(*self.in_flight)

    async def hold(self, client: httpx.AsyncClient) -> None:
        body = {"items": [{"sku": self.sku, "quantity": 1}]}
        answer = await client.post("/v1/reservations", json=body)
        if answer.status_code != 201:
            raise RuntimeError(f"hold refused: {answer.status_code} {answer.text}")
        self.holds += 1

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        self.running.clear()
        try:
            await asyncio.gather(*self.in_flight)
            yield
        finally:
            self.running.set()
