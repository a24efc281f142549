"""Slow and oversized clients against `reservation serve` (reservation/connections.py), over
raw sockets: each is refused (408, 413, 431, 503 with the error body) or dropped, never held
for ever nor answered 5xx by the app, and other clients are answered meanwhile.

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
from typing import Any
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


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """The service with 1-second deadlines and keep-alive, and the default head limit."""
    running = start_server(
        tmp_path_factory.mktemp("bounded"),
        mongodb_uri,
        RESERVATION_HEADER_TIMEOUT_SECONDS="1",
        RESERVATION_BODY_TIMEOUT_SECONDS="1",
        RESERVATION_KEEP_ALIVE_SECONDS="1",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    try:
        yield running
    finally:
        stop_server(running, mongodb_uri)


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """The service working on at most 3 requests at once, with patient deadlines."""
    running = start_server(
        tmp_path_factory.mktemp("busy"),
        mongodb_uri,
        RESERVATION_MAX_CONCURRENT_REQUESTS=str(BUSY_LIMIT),
        RESERVATION_HEADER_TIMEOUT_SECONDS="120",
        RESERVATION_BODY_TIMEOUT_SECONDS="120",
    )
    try:
        yield running
    finally:
        stop_server(running, mongodb_uri)


BODY_BUDGET = 80_000  # a client's share: 10,000


@pytest.fixture(scope="module")
def frugal(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """The service holding at most 80,000 bytes of request bodies at once (10,000 for one client
    address), with patient deadlines."""
    running = start_server(
        tmp_path_factory.mktemp("frugal"),
        mongodb_uri,
        RESERVATION_MAX_BODY_BYTES_IN_FLIGHT=str(BODY_BUDGET),
        RESERVATION_HEADER_TIMEOUT_SECONDS="120",
        RESERVATION_BODY_TIMEOUT_SECONDS="120",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    try:
        yield running
    finally:
        stop_server(running, mongodb_uri)


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


async def put_product(client: httpx.AsyncClient, sku: str) -> None:
    body = {"name": f"Product {sku}", "price": 1500, "currency": "eur", "stock": 5}
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
    assert (await eventually(busy, 200)).status == 200
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


async def eventually(server: Server, status: int) -> Answer:
    """Ask GET /readyz until the answer has `status` (within the generous wait)."""
    async with asyncio.timeout(WAIT):
        while True:
            answer = await request(server, get("/readyz"))
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


# -- the process ----------------------------------------------------------------------------


def test_serve_raises_its_soft_open_files_limit() -> None:
    lowered = (
        "import resource; from reservation.connections import raise_open_files_limit; "
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE); "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard)); "
        "print(*raise_open_files_limit(), hard)"
    )
    out = subprocess.run(
        [sys.executable, "-c", lowered], capture_output=True, text=True, check=True
    ).stdout.split()
    soft, hard, before = (int(word) for word in out)
    assert soft == hard == before
