"""GET /v1/products/{sku}/events against `reservation serve` (streaming needs a real server:
httpx's in-process transport collects a whole answer first): the first event at once, one on a
change, the current value at once on a reconnect, keep-alive comments, 404 and 422 before any
stream, the cap on streams (503), a stream holding no slot of the requests in flight, SIGTERM
ending the streams; and Cache-Control on the product reads.

Waits are generous (WAIT) and for something to happen, never for a time to pass.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.api import ADMIN, MakeApi
from tests.server import Server, start_server, stop_server

WAIT = 30.0
MAX_STREAMS = 4
# Requests in flight: one per process and per client, so any request that held a slot while it
# streams would refuse the next one.
STREAMS_ENV: dict[str, Any] = {
    "RESERVATION_STREAM_KEEPALIVE_SECONDS": "0.5",
    "RESERVATION_MAX_STREAMS": str(MAX_STREAMS),
    "RESERVATION_MAX_CONCURRENT_REQUESTS": "1",
    "RESERVATION_MAX_REQUESTS_PER_CLIENT": "1",
    "RESERVATION_IP_RATE_LIMIT": "0",
}


class Stream:
    """One open event stream: its answer, and its events and comments as they come."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def item(self) -> dict[str, str]:
        """The next event (its fields: id, event, data) or comment ({"comment": text})."""
        fields: dict[str, str] = {}
        async with asyncio.timeout(WAIT):
            async for line in self.lines:
                if line.startswith(":"):
                    return {"comment": line[1:].strip()}
                if line:
                    name, _, text = line.partition(":")
                    fields[name] = text.removeprefix(" ")
                elif fields:
                    return fields
        raise EOFError("the stream ended")

    async def event(self) -> dict[str, Any]:
        """The next event, keep-alive comments skipped: its id and its data."""
        while "comment" in (item := await self.item()):
            pass
        assert item["event"] == "stock", item
        return {"id": int(item["id"]), **json.loads(item["data"])}


@asynccontextmanager
async def stream(
    client: httpx.AsyncClient, sku: str, headers: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    async with client.stream("GET", f"/v1/products/{sku}/events", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        yield Stream(response)


@pytest.fixture(scope="module")
def streams_server(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("streams"), mongodb_uri, **STREAMS_ENV)
    try:
        yield running
    finally:
        stop_server(running, mongodb_uri)


@pytest.fixture
async def client(streams_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=streams_server.url, timeout=WAIT) as client:
        yield client


async def put_product(client: httpx.AsyncClient, sku: str, stock: int) -> None:
    body = {"name": f"Product {sku}", "price": 1500, "currency": "eur", "stock": stock}
    answer = await client.put(f"/v1/products/{sku}", json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text


async def reserve(client: httpx.AsyncClient, sku: str, quantity: int) -> None:
    body = {"items": [{"sku": sku, "quantity": quantity}]}
    answer = await client.post("/v1/reservations", json=body)
    assert answer.status_code == 201, answer.text


async def open_streams(client: httpx.AsyncClient) -> float:
    """What this server's /metrics says of its open streams."""
    metrics = (await client.get("/metrics")).text
    (line,) = [
        line for line in metrics.splitlines() if line.startswith("reservation_event_streams")
    ]
    return float(line.split()[-1])


async def until_no_streams(client: httpx.AsyncClient) -> None:
    """Wait until the server has seen every stream of the test leave."""
    async with asyncio.timeout(WAIT):
        while True:
            if not await open_streams(client):
                return
            await asyncio.sleep(0.05)


async def test_the_first_event_at_once_then_one_on_a_change(client: httpx.AsyncClient) -> None:
    await put_product(client, "first", 10)
    async with stream(client, "first") as events:
        headers = events.response.headers
        assert headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"] == "no-cache"
        assert headers["x-accel-buffering"] == "no"
        first = await events.event()
        assert first == {"id": first["id"], "sku": "first", "available": 10, "on_sale": True}
        await reserve(client, "first", 3)
        changed = await events.event()
        assert changed["available"] == 7
        assert changed["id"] > first["id"]
    await until_no_streams(client)


async def test_a_reconnect_with_last_event_id_gets_the_current_value_at_once(
    client: httpx.AsyncClient,
) -> None:
    await put_product(client, "again", 5)
    async with stream(client, "again") as events:
        seen = await events.event()
    await reserve(client, "again", 2)  # missed while away
    async with stream(client, "again", {"Last-Event-ID": str(seen["id"])}) as events:
        current = await events.event()
    assert current["available"] == 3
    assert current["id"] > seen["id"]
    await until_no_streams(client)


async def test_a_quiet_stream_sends_keep_alive_comments(client: httpx.AsyncClient) -> None:
    await put_product(client, "quiet", 1)
    async with stream(client, "quiet") as events:
        await events.event()
        assert await events.item() == {"comment": "keep-alive"}
        assert await events.item() == {"comment": "keep-alive"}
    await until_no_streams(client)


@pytest.mark.parametrize(
    ("sku", "status", "code"),
    [
        ("never-stocked", 404, "unknown_sku"),
        ("not%20a%20sku", 422, "invalid_request"),
        ("x" * 65, 422, "invalid_request"),
    ],
)
async def test_a_bad_or_unknown_sku_is_refused_before_any_stream(
    client: httpx.AsyncClient, sku: str, status: int, code: str
) -> None:
    answer = await refusal(client, sku)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"] == code
    assert await open_streams(client) == 0


async def test_head_answers_the_stream_headers_and_keeps_no_stream(
    client: httpx.AsyncClient,
) -> None:
    await put_product(client, "head", 1)
    answer = await client.head("/v1/products/head/events")
    assert answer.status_code == 200
    assert answer.content == b""
    assert answer.headers["content-type"].startswith("text/event-stream")
    await until_no_streams(client)


async def refusal(client: httpx.AsyncClient, sku: str) -> httpx.Response:
    """An events request that must be refused: its answer read whole (a stream never ends)."""
    async with client.stream("GET", f"/v1/products/{sku}/events") as response:
        assert response.status_code != 200, "streaming"
        await response.aread()
        return response


async def test_past_the_stream_cap_503_server_busy(client: httpx.AsyncClient) -> None:
    await put_product(client, "capped", 2)
    async with AsyncExitStack() as stack:
        # Each Stream kept: a dropped one's lines would be closed by the garbage collector,
        # and its connection with them.
        opened = [await stack.enter_async_context(stream(client, "capped")) for _ in range(4)]
        assert len(opened) == MAX_STREAMS
        for events in opened:
            await events.event()
        refused = await refusal(client, "capped")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == "server_busy"
        assert refused.json()["details"] == {"limit": MAX_STREAMS}
        assert await open_streams(client) == MAX_STREAMS
    await until_no_streams(client)
    async with stream(client, "capped") as events:  # room again once they left
        assert (await events.event())["available"] == 2
    await until_no_streams(client)


async def test_open_streams_take_no_slot_of_the_requests_in_flight(
    client: httpx.AsyncClient,
) -> None:
    """One request in flight per process and per client (STREAMS_ENV): with streams open, a
    reserve and a product read are still answered, and the streams see the reserve."""
    await put_product(client, "slots", 10)
    async with stream(client, "slots") as one, stream(client, "slots") as two:
        assert (await one.event())["available"] == 10
        assert (await two.event())["available"] == 10
        await reserve(client, "slots", 4)
        assert (await client.get("/v1/products/slots")).json()["available"] == 6
        assert (await one.event())["available"] == 6
        assert (await two.event())["available"] == 6
    await until_no_streams(client)


async def test_a_stream_outlives_the_deadlines_and_its_clients_share(
    tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str
) -> None:
    """Behind a trusted proxy (the share counted by the forwarded address), with every
    deadline of a request at 1 s: a stream lives on past them, and its client's one request in
    flight is free for a reserve while it streams."""
    env = {
        **STREAMS_ENV,
        "RESERVATION_HEADER_TIMEOUT_SECONDS": "1",
        "RESERVATION_BODY_TIMEOUT_SECONDS": "1",
        "RESERVATION_KEEP_ALIVE_SECONDS": "1",
        "RESERVATION_TRUSTED_PROXY_HEADER": "X-Forwarded-For",
    }
    running = start_server(tmp_path_factory.mktemp("deadlines"), mongodb_uri, **env)
    buyer = {"X-Forwarded-For": "203.0.113.9"}
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=WAIT) as client:
            await put_product(client, "lasting", 5)
            async with stream(client, "lasting", buyer) as events:
                assert (await events.event())["available"] == 5
                for _ in range(8):  # 4 s of keep-alives at least: past every deadline
                    assert await events.item() == {"comment": "keep-alive"}
                # A connection of its own: the kept-alive ones close after 1 s idle.
                async with httpx.AsyncClient(base_url=running.url, timeout=WAIT) as other:
                    body = {"items": [{"sku": "lasting", "quantity": 2}]}
                    held = await other.post("/v1/reservations", json=body, headers=buyer)
                assert held.status_code == 201, held.text
                assert (await events.event())["available"] == 3
    finally:
        stop_server(running, mongodb_uri)


async def until_the_end(events: Stream) -> None:
    while True:
        await events.item()


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_ends_open_streams_and_the_process(
    tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str, workers: str
) -> None:
    running = start_server(
        tmp_path_factory.mktemp("sigterm"), mongodb_uri, "--workers", workers, **STREAMS_ENV
    )
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=WAIT) as client:
            await put_product(client, "closing", 1)
            async with stream(client, "closing") as events:
                await events.event()
                running.process.send_signal(signal.SIGTERM)
                # The server ends the stream (a clean end of the chunked answer), not the test.
                with pytest.raises(EOFError):
                    await until_the_end(events)
        assert await asyncio.to_thread(running.process.wait, WAIT) == 0
    except subprocess.TimeoutExpired:
        pytest.fail("the process did not exit after SIGTERM with a stream open")
    finally:
        stop_server(running, mongodb_uri)


# -- Cache-Control of product reads (in-process) ----------------------------------------------


@pytest.mark.parametrize(
    ("configured", "sent"),
    [
        (None, "public, max-age=1"),
        (
            "public, max-age=5, stale-while-revalidate=10",
            "public, max-age=5, stale-while-revalidate=10",
        ),
        ("", None),
    ],
)
async def test_product_reads_send_the_configured_cache_control(
    make_api: MakeApi, configured: str | None, sent: str | None
) -> None:
    api = await (make_api() if configured is None else make_api(product_cache_control=configured))
    put = await api.put_product("cached", 3)
    assert "cache-control" not in put.headers  # a write is never cached
    for path in ("/v1/products/cached", "/v1/products"):
        answer = await api.http.get(path)
        assert answer.status_code == 200
        assert answer.headers.get("cache-control") == sent
    unknown = await api.http.get("/v1/products/not-there")
    assert unknown.status_code == 404
    assert "cache-control" not in unknown.headers
