"""Slow, oversized, crowding and malformed clients against `reservation serve`
(reservation/server/), over raw sockets: each is refused (400, 408, 413, 429, 431, 503
with the error body) or dropped, never held for ever nor answered 5xx by the app, and other
clients are answered meanwhile. A crowd comes from an address of its own (127.0.0.2 and up:
all of 127.0.0.0/8 is loopback on Linux); others from 127.0.0.1.

The bounds are set short here (1 s); "closed" means closed within a generous wait, never
within a time.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api import ADMIN, JSON
from tests.server import Server, start_server, stop_server
from tests.shop import WEBHOOK_SECRET
from tests.stripe_fake import signed

# Generous: how long a test waits for the server to close a connection it should close.
WAIT = 30.0
BUSY_LIMIT = 3
# The head of a reserve, up to its framing headers (the Content-Type it must have: docs/api.md).
RESERVE = b"POST /v1/reservations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
# The `shared` service: what one client address may hold, and what the process works on.
SHARE_REQUESTS = 3
SHARE_CONNECTIONS = 6
SHARED_PROCESS = 8


def served(
    factory: pytest.TempPathFactory, mongodb_uri: str, name: str, **env: str
) -> Iterator[Server]:
    """`reservation serve` with `env`, for the module's tests, stopped after them."""
    # `env` holds variables only (start_server's own keyword, `port`, is not one of them).
    running = start_server(factory.mktemp(name), mongodb_uri, **cast("dict[str, Any]", env))
    try:
        yield running
    finally:
        stop_server(running, mongodb_uri)


PATIENT = {"RESERVATION_HEADER_TIMEOUT_SECONDS": "120", "RESERVATION_BODY_TIMEOUT_SECONDS": "120"}
SHARES = {
    "RESERVATION_MAX_REQUESTS_PER_CLIENT": str(SHARE_REQUESTS),
    "RESERVATION_MAX_CONNECTIONS_PER_CLIENT": str(SHARE_CONNECTIONS),
    "RESERVATION_IP_RATE_LIMIT": "0",
}
BODY_BUDGET = 80_000  # a client's share: 10,000


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """The service with 1-second deadlines and keep-alive, and the default head limit."""
    yield from served(
        tmp_path_factory,
        mongodb_uri,
        "bounded",
        RESERVATION_HEADER_TIMEOUT_SECONDS="1",
        RESERVATION_BODY_TIMEOUT_SECONDS="1",
        RESERVATION_KEEP_ALIVE_SECONDS="1",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """The service working on at most 3 requests at once, with patient deadlines."""
    yield from served(
        tmp_path_factory,
        mongodb_uri,
        "busy",
        RESERVATION_MAX_CONCURRENT_REQUESTS=str(BUSY_LIMIT),
        **PATIENT,
    )


@pytest.fixture(scope="module")
def frugal(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """The service holding at most 80,000 bytes of request bodies at once (10,000 for one client
    address), with patient deadlines."""
    yield from served(
        tmp_path_factory,
        mongodb_uri,
        "frugal",
        RESERVATION_MAX_BODY_BYTES_IN_FLIGHT=str(BODY_BUDGET),
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        **PATIENT,
    )


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """The service where one client address may have 3 requests in flight and 6 connections,
    of 8 requests the process works on, with patient deadlines and no rate limit."""
    yield from served(
        tmp_path_factory,
        mongodb_uri,
        "shared",
        RESERVATION_MAX_CONCURRENT_REQUESTS=str(SHARED_PROCESS),
        **SHARES,
        **PATIENT,
    )


@pytest.fixture(scope="module")
def hasty(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """The same shares with 3-second deadlines: a crowd that sends no body is timed out."""
    yield from served(
        tmp_path_factory,
        mongodb_uri,
        "hasty",
        RESERVATION_HEADER_TIMEOUT_SECONDS="3",
        RESERVATION_BODY_TIMEOUT_SECONDS="3",
        **SHARES,
    )


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """The shares of `shared` behind a pretended proxy that writes X-Forwarded-For."""
    yield from served(
        tmp_path_factory,
        mongodb_uri,
        "proxied",
        RESERVATION_TRUSTED_PROXY_HEADER="X-Forwarded-For",
        **SHARES,
        **PATIENT,
    )


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> Any:
        assert self.headers["content-type"] == "application/json", self.headers
        return json.loads(self.body)["error"]


def parse(raw: bytes) -> Answer:
    """The first HTTP answer in `raw` (one with a Content-Length, as every answer here)."""
    head, separator, rest = raw.partition(b"\r\n\r\n")
    assert separator, f"no whole answer in {raw[:200]!r}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    return Answer(int(status_line.split()[1]), headers, rest[:length])


@asynccontextmanager
async def connection(
    server: Server,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    address = urlsplit(server.url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def until_closed(reader: asyncio.StreamReader, within: float = WAIT) -> bytes:
    """Everything the server sends until it closes the connection (EOF or reset)."""
    received = b""
    async with asyncio.timeout(within):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionError:
                return received
            if not chunk:
                return received
            received += chunk


async def send(writer: asyncio.StreamWriter, data: bytes) -> bool:
    """Write; False once the server has closed its side."""
    try:
        writer.write(data)
        await writer.drain()
    except ConnectionError:
        return False
    return True


async def trickle(server: Server, first: bytes, byte: bytes = b"x", every: float = 0.2) -> bytes:
    """Send `first`, then one byte every `every` seconds until the server closes the
    connection; what it answered."""
    async with connection(server) as (reader, writer):
        closed = asyncio.ensure_future(until_closed(reader))
        await send(writer, first)
        while not closed.done() and await send(writer, byte):
            await asyncio.wait([closed], timeout=every)
        return await closed


async def request(server: Server, raw: bytes) -> Answer:
    """One raw request on a connection of its own; the answer."""
    async with connection(server) as (reader, writer):
        await send(writer, raw)
        return parse(await until_closed(reader))


async def first_answer(server: Server, raw: bytes) -> Answer:
    """Send `raw` on a connection of its own; the first answer, read as soon as it is whole
    (the server may still be waiting for the rest of a body, which never comes)."""
    async with connection(server) as (reader, writer):
        await send(writer, raw)
        received = b""
        async with asyncio.timeout(WAIT):
            while not _whole(received):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                received += chunk
        return parse(received)


def _whole(raw: bytes) -> bool:
    head, separator, rest = raw.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *([0-9]+)", head)
    return bool(separator and length and len(rest) >= int(length[1]))


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: test", "Connection: close", *headers, "", ""]
    return "\r\n".join(lines).encode()


async def put_product(client: httpx.AsyncClient, sku: str, stock: int = 5) -> None:
    body = {"name": f"Product {sku}", "price": 1500, "currency": "eur", "stock": stock}
    answer = await client.put(f"/v1/products/{sku}", json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text


async def reserved(client: httpx.AsyncClient, sku: str) -> int:
    product = (await client.get(f"/v1/products/{sku}")).json()
    count: int = product["reserved"]
    return count


def server_log(server: Server) -> str:
    assert server.log is not None
    return server.log.read_text()


# -- slow clients ---------------------------------------------------------------------------


async def test_a_connection_that_sends_nothing_is_closed(bounded: Server) -> None:
    async with connection(bounded) as (reader, _):
        closed = asyncio.ensure_future(until_closed(reader))
        async with httpx.AsyncClient(base_url=bounded.url, timeout=10) as client:
            assert (await client.get("/readyz")).status_code == 200
        assert await closed == b""  # nothing came in, nothing is answered


async def test_slowloris_headers_get_408_while_others_are_answered(bounded: Server) -> None:
    slow = asyncio.ensure_future(trickle(bounded, b"GET /readyz HTTP/1.1\r\nHost: test\r\nX-A: "))
    async with httpx.AsyncClient(base_url=bounded.url, timeout=10) as client:
        while not slow.done():
            assert (await client.get("/readyz")).status_code == 200
            await asyncio.sleep(0.1)
    answer = parse(await slow)
    assert (answer.status, answer.error()) == (408, "request_timeout")
    assert answer.headers["connection"] == "close"


async def test_a_slow_body_gets_408_and_holds_nothing(bounded: Server) -> None:
    async with httpx.AsyncClient(base_url=bounded.url, timeout=10) as client:
        await put_product(client, "slow-body")
        start = b'{"items": [{"sku": "slow-body", "quantity": 1}]'
        head = RESERVE + b"Content-Length: 1000\r\n\r\n"
        slow = asyncio.ensure_future(trickle(bounded, head + start, byte=b" "))
        while not slow.done():
            assert (await client.get("/v1/products/slow-body")).status_code == 200
            await asyncio.sleep(0.1)
        answer = parse(await slow)
        assert (answer.status, answer.error()) == (408, "request_timeout")
        assert await reserved(client, "slow-body") == 0


async def test_a_body_that_stops_gets_408(bounded: Server) -> None:
    head = RESERVE + b"Content-Length: 100\r\n\r\n{"
    async with connection(bounded) as (reader, writer):
        await send(writer, head)
        answer = parse(await until_closed(reader))
    assert (answer.status, answer.error()) == (408, "request_timeout")


async def test_an_unread_body_that_trickles_is_cut_off(bounded: Server) -> None:
    # The admin route refuses before it reads the body; the rest of the body may not hold
    # the connection (any byte used to cancel the keep-alive timer for good).
    head = b"PUT /v1/products/x HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n"
    answer = parse(await trickle(bounded, head))
    assert (answer.status, answer.error()) == (401, "unauthorized")


async def test_an_idle_kept_alive_connection_is_closed(bounded: Server) -> None:
    async with connection(bounded) as (reader, writer):
        await send(writer, b"GET /readyz HTTP/1.1\r\nHost: test\r\n\r\n")
        answer = parse(await until_closed(reader))  # answered, then closed when idle
    assert answer.status == 200
    assert "connection" not in answer.headers  # kept alive, until the keep-alive timeout


async def test_blank_lines_after_an_answer_do_not_keep_a_connection(bounded: Server) -> None:
    answer = parse(await trickle(bounded, b"GET /readyz HTTP/1.1\r\nHost: test\r\n\r\n", b"\r\n"))
    assert answer.status == 200


async def test_many_idle_connections_are_closed_and_others_answered(bounded: Server) -> None:
    idle = [await asyncio.open_connection(*_address(bounded)) for _ in range(300)]
    try:
        closed = [asyncio.ensure_future(until_closed(reader)) for reader, _ in idle]
        async with httpx.AsyncClient(base_url=bounded.url, timeout=10) as client:
            assert (await client.get("/readyz")).status_code == 200
        assert await asyncio.gather(*closed) == [b""] * len(idle)
    finally:
        for _, writer in idle:
            writer.close()


async def test_pipelined_and_split_requests_are_still_served(bounded: Server) -> None:
    async with connection(bounded) as (reader, writer):
        await send(writer, b"GET /readyz HTTP/1.1\r\nHost: test\r\n\r\n" * 3)
        received = await until_closed(reader)
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 3
    # A legitimate head of 20 KiB (cookies), sent in pieces: under the limit, answered.
    cookie = "Cookie: " + "; ".join(f"c{i}={'v' * 90}" for i in range(200))
    raw = get("/readyz", cookie)
    async with connection(bounded) as (reader, writer):
        for offset in range(0, len(raw), 1000):
            await send(writer, raw[offset : offset + 1000])
        assert parse(await until_closed(reader)).status == 200


# -- oversized clients ----------------------------------------------------------------------


@pytest.mark.parametrize("pieces", [1, 100], ids=["whole", "in-pieces"])
async def test_oversized_headers_get_431(bounded: Server, pieces: int) -> None:
    one_big = get("/readyz", "X-Big: " + "a" * 100_000)
    many = get("/readyz", *(f"X-{i}: v" for i in range(5000)))
    for raw in (one_big, many):
        async with connection(bounded) as (reader, writer):
            size = -(-len(raw) // pieces)
            for offset in range(0, len(raw), size):
                if not await send(writer, raw[offset : offset + size]):
                    break
            answer = parse(await until_closed(reader))
        assert (answer.status, answer.error()) == (431, "headers_too_large")
    assert (await request(bounded, get("/readyz"))).status == 200


async def test_a_head_that_never_ends_gets_431(bounded: Server) -> None:
    async with connection(bounded) as (reader, writer):
        await send(writer, b"GET /readyz HTTP/1.1\r\nHost: test\r\nX-Big: ")
        for _ in range(40):
            if not await send(writer, b"a" * 4096):
                break
        answer = parse(await until_closed(reader))
    assert (answer.status, answer.error()) == (431, "headers_too_large")


async def test_oversized_bodies_get_413_and_change_nothing(bounded: Server) -> None:
    async with httpx.AsyncClient(base_url=bounded.url, timeout=10) as client:
        await put_product(client, "big-body")
        cart = b'{"items": [{"sku": "big-body", "quantity": 1}]'
        # Chunked, no Content-Length: refused once 64 KiB came, before the rest is read.
        chunk = b" " * 4096
        chunked = (
            RESERVE
            + b"Transfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n" % (len(cart), cart)
            + b"%x\r\n%s\r\n" % (len(chunk), chunk) * 40
            + b"1\r\n}\r\n0\r\n\r\n"
        )
        declared = RESERVE + b"Content-Length: 9999999\r\n\r\n"
        for raw in (chunked, declared + cart):
            async with connection(bounded) as (reader, writer):
                await send(writer, raw)
                answer = parse(await until_closed(reader))
            assert (answer.status, answer.error()) == (413, "payload_too_large")
        assert await reserved(client, "big-body") == 0
        # A body under the limit that arrives with its head in one large read is not taken
        # for a large head.
        product = {"name": "Padded", "price": 1500, "currency": "eur", "stock": 5}
        padded = json.dumps(product).encode() + b" " * 60_000
        stored = await client.put(
            "/v1/products/padded",
            content=padded,
            headers={**ADMIN, **JSON, "Connection": "close"},
        )
        assert stored.status_code == 200, stored.text


async def test_a_large_stripe_event_is_received_whole(bounded: Server) -> None:
    # Stripe's events are tens of KiB at most; one of 300 KiB, signed, still arrives within
    # the bounds (its head in the same read as the start of its body is not a large head).
    event = {
        "id": "evt_large",
        "type": "test.large_event",
        "data": {"object": {"id": "obj_large", "padding": "x" * 300_000}},
    }
    payload, headers = signed(event, WEBHOOK_SECRET)
    async with httpx.AsyncClient(base_url=bounded.url, timeout=10) as client:
        delivered = await client.post("/v1/webhooks/stripe", content=payload, headers=headers)
    assert delivered.status_code == 200, delivered.text
    assert delivered.json() == {"received": True}


def webhook_head(signature: str | None, length: int = 1024 * 1024 - 1) -> bytes:
    lines = ["POST /v1/webhooks/stripe HTTP/1.1", "Host: test", f"Content-Length: {length}"]
    if signature is not None:
        lines.append(f"Stripe-Signature: {signature}")
    return "\r\n".join([*lines, "", ""]).encode()


@pytest.mark.parametrize(
    ("signature", "said"),
    [
        (None, "header is missing"),
        ("t=1,v1=00", "v1 signature of the Stripe-Signature is not 64 lowercase"),
        ("t=1,v1=" + "0" * 64, "s old"),
        ("t={ahead},v1=" + "0" * 64, "ahead of this server's clock"),
        ("t={now}=x,v1=" + "0" * 64, "not a whole number of seconds"),
        ("t={now}", "no v1 signature"),
    ],
    ids=["missing", "the issue's", "stale", "ahead", "not a number", "no signature"],
)
async def test_a_webhook_header_that_cannot_verify_is_refused_before_its_body(
    bounded: Server, signature: str | None, said: str
) -> None:
    # The head alone, declaring nearly 1 MiB: the refusal comes without a byte of the body
    # (reading it first, the service would wait for it until the body deadline: a 408).
    now = int(time.time())
    if signature is not None:
        signature = signature.format(now=now, ahead=now + 3600)
    answer = await first_answer(bounded, webhook_head(signature))
    assert (answer.status, answer.error()) == (400, "invalid_signature"), answer.body
    assert said in json.loads(answer.body)["message"]
    # A well-formed header and a length over the route's limit: 413, as at once.
    well_formed = f"t={now},v1={'0' * 64}"
    answer = await first_answer(bounded, webhook_head(well_formed, 2 * 1024 * 1024))
    assert (answer.status, answer.error()) == (413, "payload_too_large")


async def test_the_limits_hold_in_every_worker(
    tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str
) -> None:
    workers = start_server(
        tmp_path_factory.mktemp("workers"),
        mongodb_uri,
        "--workers",
        "2",
        RESERVATION_MAX_HEADER_BYTES="2000",
    )
    try:
        # Connections land on either worker; each refuses a head of 5 KB (under the default
        # limit: only the configured one refuses it) and answers a small one.
        for _ in range(8):
            refused = await request(workers, get("/readyz", "X-Big: " + "a" * 5000))
            assert (refused.status, refused.error()) == (431, "headers_too_large")
            assert (await request(workers, get("/readyz"))).status == 200
    finally:
        stop_server(workers, mongodb_uri)


# -- requests in flight ---------------------------------------------------------------------


async def test_past_the_requests_in_flight_limit_503_with_retry_after(busy: Server) -> None:
    head = RESERVE + b"Content-Length: 100\r\n\r\n{"
    held = [await asyncio.open_connection(*_address(busy)) for _ in range(BUSY_LIMIT)]
    try:
        for _, writer in held:
            await send(writer, head)  # each a request in flight, waiting for its body
        answer = await eventually(busy, 503)
        assert answer.error() == "server_busy"
        assert answer.headers["retry-after"] == "1"
    finally:
        for _, writer in held:
            writer.close()
    # The clients gone, their requests end (a 408 nobody reads: no error logged).
    assert (await eventually(busy, 404)).error() == "unknown_sku"
    assert "unhandled" not in server_log(busy)


async def test_idle_connections_do_not_count_as_requests(busy: Server) -> None:
    idle = [await asyncio.open_connection(*_address(busy)) for _ in range(10 * BUSY_LIMIT)]
    try:
        async with httpx.AsyncClient(base_url=busy.url, timeout=10) as client:
            await put_product(client, "idle-crowd")
            for _ in range(3):
                assert (await client.get("/readyz")).status_code == 200
            created = await client.post(
                "/v1/reservations", json={"items": [{"sku": "idle-crowd", "quantity": 1}]}
            )
            assert created.status_code == 201, created.text
    finally:
        for _, writer in idle:
            writer.close()


async def eventually(server: Server, status: int, path: str = "/v1/products/none") -> Answer:
    """Ask GET `path` until the answer has `status` (within the generous wait). By default a
    product that does not exist: 404, or 503 while the process is busy (the health probes are
    never refused)."""
    async with asyncio.timeout(WAIT):
        while True:
            answer = await request(server, get(path))
            if answer.status == status:
                return answer
            await asyncio.sleep(0.1)


def _address(server: Server) -> tuple[str, int]:
    address = urlsplit(server.url)
    assert address.hostname is not None
    assert address.port is not None
    return address.hostname, address.port


# -- bodies in flight -----------------------------------------------------------------------


async def stalled_from(
    server: Server, source: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection from the loopback address `source` (all of 127.0.0.0/8 is this machine)."""
    return await asyncio.open_connection(*_address(server), local_addr=(source, 0))


async def test_bodies_in_flight_draw_from_one_budget_per_process(frugal: Server) -> None:
    # A header that passes the checks made before the body (it will not verify any body).
    signature = f"t={int(time.time())},v1={'0' * 64}"
    # Eight clients, each within its share (an eighth), stall 9,000 bytes of a body each.
    stalled = [await stalled_from(frugal, f"127.0.0.{n}") for n in range(2, 10)]
    async with httpx.AsyncClient(base_url=frugal.url, timeout=10) as client:
        await put_product(client, "frugal")
        small = {"items": [{"sku": "frugal", "quantity": 1}]}
        padded = json.dumps(small).encode() + b" " * 9_000  # under the route's 64 KiB
        try:
            for _, writer in stalled:  # all but the last byte, then nothing
                await send(writer, webhook_head(signature, 9_001) + b"x" * 9_000)
            await body_bytes_become(client, 72_000)
            # 8,000 bytes left. A declared length over that: refused at once, unread.
            refused = await first_answer(frugal, webhook_head(signature, 9_001))
            assert (refused.status, refused.error()) == (503, "server_busy")
            assert refused.headers["retry-after"] == "1"
            # Without a length (chunked): refused at the chunk that does not fit.
            chunked = webhook_head(signature).replace(
                b"Content-Length: 1048575", b"Transfer-Encoding: chunked"
            )
            chunk = b"%x\r\n%s\r\n" % (9_500, b"y" * 9_500)
            refused = await first_answer(frugal, chunked + chunk)
            assert (refused.status, refused.error()) == (503, "server_busy")
            # Every route draws from the same budget: a small reservation fits, a padded one
            # does not, and neither changes anything it should not.
            assert (await client.post("/v1/reservations", json=small)).status_code == 201
            busy = await client.post("/v1/reservations", content=padded, headers=JSON)
            assert (busy.status_code, busy.json()["error"]) == (503, "server_busy")
            assert await reserved(client, "frugal") == 1
        finally:
            for _, writer in stalled:
                writer.close()
        # Their clients gone, the stalled bodies are given back, every byte.
        await body_bytes_become(client, 0)
        reserve = await client.post("/v1/reservations", content=padded, headers=JSON)
        assert reserve.status_code == 201
        whole = await first_answer(frugal, webhook_head(signature, 9_000) + b"x" * 9_000)
        assert (whole.status, whole.error()) == (400, "invalid_signature")  # read, then checked
        await body_bytes_become(client, 0)
    assert "unhandled" not in server_log(frugal)


async def test_one_client_holds_only_its_share_of_the_body_budget(frugal: Server) -> None:
    """One address stalling bodies is refused past an eighth of the budget; the budget's
    rest stays for everybody else."""
    signature = f"t={int(time.time())},v1={'0' * 64}"
    _, first = await stalled_from(frugal, "127.0.0.2")
    async with httpx.AsyncClient(base_url=frugal.url, timeout=10) as client:
        await put_product(client, "share")
        small = {"items": [{"sku": "share", "quantity": 1}]}
        padded = json.dumps(small).encode() + b" " * 9_000
        try:
            await send(first, webhook_head(signature, 9_001) + b"x" * 9_000)
            await body_bytes_become(client, 9_000)
            reader, second = await stalled_from(frugal, "127.0.0.2")
            try:
                await send(second, webhook_head(signature, 2_000))
                answer = await asyncio.wait_for(reader.read(65536), WAIT)
            finally:
                second.close()
            assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
            assert b"server_busy" in answer
            # Another address still has the rest of the budget.
            other = await client.post("/v1/reservations", content=padded, headers=JSON)
            assert other.status_code == 201, other.text
        finally:
            first.close()
        await body_bytes_become(client, 0)


async def body_bytes_become(client: httpx.AsyncClient, expected: int) -> None:
    """Wait (within the generous wait) until the process holds `expected` body bytes."""
    async with asyncio.timeout(WAIT):
        while True:
            text = (await client.get("/metrics")).text
            found = re.search(r"^reservation_request_body_bytes ([0-9.e+]+)$", text, re.M)
            if found and float(found[1]) == expected:
                return
            await asyncio.sleep(0.05)


# -- one client's share ---------------------------------------------------------------------

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]
BODY_BYTES = 100


def held_head(sku: str, *headers: str) -> bytes:
    """The head of a reservation whose 100-byte body is not sent (the crowd of issue 22).
    With `Expect: 100-continue`: the server says `100 Continue` once the handler waits for the
    body, which tells an admitted request from a refused one without waiting."""
    lines = [
        "POST /v1/reservations HTTP/1.1",
        "Host: test",
        "Content-Type: application/json",
        f"Content-Length: {BODY_BYTES}",
        "Expect: 100-continue",
        *headers,
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def cart_body(sku: str) -> bytes:
    """The 100 bytes `held_head` announces: a cart of one unit of `sku`."""
    cart = json.dumps({"items": [{"sku": sku, "quantity": 1}]}).encode()
    return cart.ljust(BODY_BYTES)


async def open_from(server: Server, source: str) -> Stream:
    """A connection to `server` from the loopback address `source`."""
    return await asyncio.open_connection(*_address(server), local_addr=(source, 0))


async def next_answer(reader: asyncio.StreamReader) -> Answer:
    """The next answer on a connection that may stay open (one with a Content-Length)."""
    async with asyncio.timeout(WAIT):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(parse(head).headers["content-length"])
        return parse(head + await reader.readexactly(length))


async def held(
    server: Server, source: str, sku: str, *headers: str
) -> tuple[Stream, Answer | None]:
    """Open a connection from `source` and send `held_head`: see `admitted`."""
    stream = await open_from(server, source)
    try:
        return stream, await admitted(stream, sku, *headers)
    except BaseException:
        close_all([stream])
        raise


async def admitted(stream: Stream, sku: str, *headers: str) -> Answer | None:
    """Send `held_head` on `stream`; None when the request was admitted (the handler waits
    for its body: 100 Continue), else the answer refusing it."""
    reader, writer = stream
    await send(writer, held_head(sku, *headers))
    async with asyncio.timeout(WAIT):
        head = await reader.readuntil(b"\r\n\r\n")
        if head == b"HTTP/1.1 100 Continue\r\n\r\n":
            return None
        length = int(parse(head).headers["content-length"])
        return parse(head + await reader.readexactly(length))


def close_all(streams: list[Stream]) -> None:
    for _, writer in streams:
        writer.close()


async def crowd(server: Server, source: str, sku: str) -> tuple[list[Stream], bool]:
    """From `source`, as many connections as its share, each sending `held_head`, then one
    more. True when the server kept exactly its share: the first SHARE_REQUESTS requests
    admitted, the rest of the connections refused 429 with Retry-After, and the one more
    connection closed unanswered. The connections stay open (the caller closes them)."""
    streams: list[Stream] = []
    outcomes: list[int | None] = []
    expected = [None] * SHARE_REQUESTS + [429] * (SHARE_CONNECTIONS - SHARE_REQUESTS)
    try:
        for _ in range(SHARE_CONNECTIONS):
            stream = await open_from(server, source)
            streams.append(stream)
            try:
                refused = await admitted(stream, sku)
            except (ConnectionError, asyncio.IncompleteReadError):
                return streams, False  # closed: what a crowd before held is not given back yet
            outcomes.append(None if refused is None else refused.status)
            if refused is not None and refused.status == 429:
                assert refused.error() == "too_many_requests_in_flight"
                assert refused.headers["retry-after"] == "1"
        if outcomes != expected:
            return streams, False
        extra = await open_from(server, source)
        streams.append(extra)
        await send(extra[1], held_head(sku))
        return streams, await until_closed(extra[0]) == b""
    except BaseException:
        close_all(streams)
        raise


async def whole_share(server: Server, source: str, sku: str) -> list[Stream]:
    """`crowd` until the server keeps exactly the share of `source` (what a crowd before it
    held is given back as the server notices it gone); the crowd's connections."""
    async with asyncio.timeout(WAIT):
        while True:
            streams, exact = await crowd(server, source, sku)
            if exact:
                return streams
            close_all(streams)
            await asyncio.sleep(0.2)


async def test_one_address_cannot_take_the_process_from_others(shared: Server) -> None:
    # Issue 22: one address, thousands of connections each sending only the head of a POST,
    # turned every other client's answer into 503 server_busy. Here its share is 3 requests
    # and 6 connections; the process works on 8.
    async with httpx.AsyncClient(base_url=shared.url, timeout=10) as client:
        await put_product(client, "crowded")
    streams, exact = await crowd(shared, "127.0.0.2", "crowded")
    try:
        assert exact
        async with httpx.AsyncClient(base_url=shared.url, timeout=10) as client:
            assert (await client.get("/v1/products/crowded")).status_code == 200
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            created = await client.post(
                "/v1/reservations", json={"items": [{"sku": "crowded", "quantity": 1}]}
            )
            assert created.status_code == 201, created.text
            # The crowd's admitted requests were only waiting: their bodies come, they are
            # answered as any other.
            for reader, writer in streams[:SHARE_REQUESTS]:
                await send(writer, cart_body("crowded"))
                assert (await next_answer(reader)).status == 201
            assert await reserved(client, "crowded") == SHARE_REQUESTS + 1
    finally:
        close_all(streams)


async def test_health_probes_are_answered_when_the_process_is_full(shared: Server) -> None:
    # Three addresses, each within its share, fill the process's 8 requests in flight.
    streams: list[Stream] = []
    try:
        async with asyncio.timeout(WAIT):
            for source in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
                for _ in range(min(SHARE_REQUESTS, SHARED_PROCESS - len(streams))):
                    while True:  # a request of an earlier test may still be ending
                        stream, refused = await held(shared, source, "full")
                        if refused is None:
                            streams.append(stream)
                            break
                        close_all([stream])
                        await asyncio.sleep(0.2)
        busy = await request(shared, get("/v1/products/full"))
        assert (busy.status, busy.error()) == (503, "server_busy")
        for probe in ("/healthz", "/readyz"):
            assert (await request(shared, get(probe))).status == 200
    finally:
        close_all(streams)


async def test_an_address_has_its_whole_share_again_after_its_crowd_leaves(
    shared: Server,
) -> None:
    async with httpx.AsyncClient(base_url=shared.url, timeout=10) as client:
        await put_product(client, "again", stock=100)
    source = "127.0.0.6"
    # The crowd leaves with its requests answered (the refused ones' bodies read and dropped).
    streams = await whole_share(shared, source, "again")
    for reader, writer in streams[:SHARE_REQUESTS]:
        await send(writer, cart_body("again"))
        assert (await next_answer(reader)).status == 201
    for _, writer in streams[SHARE_REQUESTS:-1]:
        await send(writer, cart_body("again"))
    close_all(streams)
    # The crowd leaves mid-request: the clients close with their bodies unsent.
    close_all(await whole_share(shared, source, "again"))
    # After both, the address again holds exactly its share, no less (nothing counted twice
    # or never given back).
    close_all(await whole_share(shared, source, "again"))


async def test_a_crowd_that_times_out_leaves_nothing_behind(hasty: Server) -> None:
    source = "127.0.0.7"
    streams = await whole_share(hasty, source, "late")
    # Nothing more is sent: the admitted requests get 408 and are closed, the refused ones'
    # connections are closed when their bodies are late.
    answers = await asyncio.gather(*(until_closed(reader) for reader, _ in streams))
    close_all(streams)
    assert [parse(a).status for a in answers[:SHARE_REQUESTS]] == [408] * SHARE_REQUESTS
    close_all(await whole_share(hasty, source, "late"))


async def test_behind_a_proxy_the_share_is_the_forwarded_address(proxied: Server) -> None:
    async with httpx.AsyncClient(base_url=proxied.url, timeout=10) as client:
        await put_product(client, "proxied", stock=100)
    # Every connection is the proxy's (127.0.0.1): more than the connections' share of them,
    # and each client is counted by the right-most entry the proxy wrote.
    one = "X-Forwarded-For: 192.0.2.66, 198.51.100.1"  # the left entry is the client's own
    streams: list[Stream] = []
    try:
        async with asyncio.timeout(WAIT):
            while len(streams) < SHARE_REQUESTS:  # a request of an earlier test may be ending
                stream, refused = await held(proxied, "127.0.0.1", "proxied", one)
                if refused is None:
                    streams.append(stream)
                else:
                    close_all([stream])
                    await asyncio.sleep(0.2)
        stream, refused = await held(proxied, "127.0.0.1", "proxied", one)
        streams.append(stream)
        assert refused is not None
        assert (refused.status, refused.error()) == (429, "too_many_requests_in_flight")
        for last in range(2, 2 + SHARE_CONNECTIONS):
            other = f"X-Forwarded-For: 198.51.100.1, 198.51.100.{last}"
            stream, refused = await held(proxied, "127.0.0.1", "proxied", other)
            streams.append(stream)
            assert refused is None
        # One connection carries one client's request, then another's: each counts as its own.
        reader, writer = streams[-1]
        await send(writer, cart_body("proxied"))
        assert (await next_answer(reader)).status == 201
        refused = await admitted(streams[-1], "proxied", one)  # 198.51.100.1's: its share is full
        assert refused is not None
        assert refused.status == 429
    finally:
        close_all(streams)


# -- malformed HTTP -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"HELLO THERE\r\n\r\n",
        b"GET /readyz HTTP/1.1\r\nHost: test\r\nNo colon here\r\n\r\n",
        b"GET /readyz HTTP/9.9\r\nHost: test\r\n\r\n",
        # Over the head's limit too, in one read: one answer still.
        b"GET /readyz HTTP/1.1\r\nX-Big: " + b"a" * 40_000 + b"\r\nNo colon\r\n\r\n",
    ],
    ids=["request-line", "header", "version", "large-head"],
)
async def test_malformed_http_gets_the_api_error_body(bounded: Server, raw: bytes) -> None:
    async with connection(bounded) as (reader, writer):
        await send(writer, raw)
        received = await until_closed(reader)
    answer = parse(received)
    assert (answer.status, answer.error()) == (400, "invalid_http")
    assert answer.headers["connection"] == "close"
    assert received.count(b"\r\ncontent-length: ") == 1  # one answer
    assert "Traceback" not in server_log(bounded)


async def test_a_malformed_body_gets_400_and_changes_nothing(bounded: Server) -> None:
    async with httpx.AsyncClient(base_url=bounded.url, timeout=10) as client:
        await put_product(client, "bad-chunk")
        cart = b'{"items": [{"sku": "bad-chunk", "quantity": 1}]}'
        raw = (
            b"POST /v1/reservations HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n" % (len(cart), cart)
            + b"zz\r\n"  # not a chunk size
        )
        answer = await request(bounded, raw)
        assert (answer.status, answer.error()) == (400, "invalid_http")
        # Behind a request whose answer is in progress (pipelined): that answer, then the 400.
        async with connection(bounded) as (reader, writer):
            await send(writer, b"GET /readyz HTTP/1.1\r\nHost: test\r\n\r\n" + raw)
            received = await until_closed(reader)
        first = parse(received)
        assert first.status == 200
        second = parse(received[received.index(first.body) + len(first.body) :])
        assert (second.status, second.error()) == (400, "invalid_http")
        assert await reserved(client, "bad-chunk") == 0
    assert "Traceback" not in server_log(bounded)


# -- the process ----------------------------------------------------------------------------


def test_serve_raises_its_soft_open_files_limit() -> None:
    lowered = (
        "import resource; from reservation.server.open_files import raise_open_files_limit; "
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE); "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard)); "
        "print(*raise_open_files_limit(), hard)"
    )
    out = subprocess.run(
        [sys.executable, "-c", lowered], capture_output=True, text=True, check=True
    ).stdout.split()
    soft, hard, before = (int(word) for word in out)
    assert soft == hard == before
