"""The demo's shop backend (harness/shop_front.py): a name in, a customer token out, signed as
the README shows a shop minting one; every other request passed to the service as it came, the
visitor's claimed addresses replaced by the one it saw."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import jwt
import pytest
from starlette.types import Message

from harness.customer_tokens import AUDIENCE, mint, new_secret
from harness.shop_front import app, customer_of

SECRET = new_secret()
NOWHERE = "http://service.invalid"


class Streamed(httpx.AsyncByteStream):
    """A body the service sends as it goes (httpx reads a body given whole at once)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body


@asynccontextmanager
async def client(
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """The shop backend in-process, its lifespan run; the service behind it is `transport`."""
    shop = app(SECRET, NOWHERE, transport)
    async with shop.router.lifespan_context(shop):
        asgi = httpx.ASGITransport(app=shop, client=("203.0.113.9", 4000))
        async with httpx.AsyncClient(transport=asgi, base_url="http://shop") as http:
            yield http


def test_a_name_stands_for_a_customer_id() -> None:
    assert customer_of("Ada Lovelace") == "ada-lovelace"
    assert customer_of("  José   Díaz! ") == "jose-diaz"
    assert customer_of("x" * 60) == "x" * 40
    assert customer_of("!!! ???") is None
    assert customer_of("李") is None


async def test_the_token_names_the_customer_for_15_minutes() -> None:
    async with client() as http:
        assert (await http.get("/shop")).json() == {
            "tokens": True,
            "audience": AUDIENCE,
            "offers": False,
        }
        answer = await http.post("/shop/token", json={"name": " Ada Lovelace "})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert (body["customer_id"], body["name"]) == ("ada-lovelace", "Ada Lovelace")
    assert jwt.get_unverified_header(body["token"])["alg"] == "HS256"
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert claims["sub"] == "ada-lovelace"
    assert claims["exp"] - claims["iat"] == 15 * 60
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(body["token"], new_secret(), algorithms=["HS256"], audience=AUDIENCE)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"name": ""}, 422, "invalid_name"),
        ({"name": "?!"}, 422, "invalid_name"),
        ({"name": "a" * 41}, 422, "invalid_name"),
        ({"name": 7}, 422, "invalid_name"),
        (["Ada"], 422, "invalid_name"),
    ],
)
async def test_a_name_it_cannot_use_is_refused(body: object, status: int, error: str) -> None:
    async with client() as http:
        answer = await http.post("/shop/token", json=body)
    assert (answer.status_code, answer.json()["error"]) == (status, error)


async def test_only_json_is_taken() -> None:
    async with client() as http:
        form = await http.post("/shop/token", data={"name": "Ada"})
        broken = await http.post(
            "/shop/token", content=b"{", headers={"Content-Type": "application/json"}
        )
    assert form.status_code == 415
    assert broken.status_code == 400


async def test_every_other_request_goes_to_the_service_as_it_came() -> None:
    seen: list[httpx.Request] = []

    def service(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            201,
            stream=Streamed(b'{"id":"r1"}'),
            headers=[("Content-Type", "application/json"), ("X-Thing", "a"), ("X-Thing", "b")],
        )

    token = mint("ada-lovelace", SECRET)
    async with client(httpx.MockTransport(service)) as http:
        answer = await http.post(
            "/v1/reservations?x=1%2F2",
            json={"items": [{"sku": "tee", "quantity": 1}]},
            headers={
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": "k1",
                "X-Forwarded-For": "6.6.6.6",
                "Forwarded": "for=6.6.6.6",
                "X-Real-IP": "6.6.6.6",
            },
        )
    assert answer.status_code == 201
    assert answer.json() == {"id": "r1"}
    assert answer.headers.get_list("x-thing") == ["a", "b"]
    [request] = seen
    assert request.method == "POST"
    assert request.url.raw_path == b"/v1/reservations?x=1%2F2"
    assert request.headers["authorization"] == f"Bearer {token}"
    assert request.headers["idempotency-key"] == "k1"
    assert request.headers["x-forwarded-for"] == "203.0.113.9"  # the address it saw, alone
    assert "forwarded" not in request.headers
    assert "x-real-ip" not in request.headers
    assert request.content == b'{"items":[{"sku":"tee","quantity":1}]}'


async def test_a_service_it_cannot_reach_is_a_502() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with client(httpx.MockTransport(down)) as http:
        answer = await http.get("/v1/products")
    assert (answer.status_code, answer.json()["error"]) == (502, "bad_gateway")


async def test_a_stream_of_events_passes_through_event_by_event() -> None:
    """The live stock (Server-Sent Events) reaches the page as the service sends it: the first
    event is passed on while the service has not sent the second, and a quiet stream is never
    cut for being quiet (no read timeout)."""
    second = asyncio.Event()
    seen: list[httpx.Request] = []

    class Events(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b'event: stock\ndata: {"available": 5}\n\n'
            await second.wait()
            yield b'event: stock\ndata: {"available": 4}\n\n'

    def service(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, stream=Events(), headers={"Content-Type": "text/event-stream"})

    shop = app(SECRET, NOWHERE, httpx.MockTransport(service))
    sent: list[Message] = []
    first = asyncio.Event()

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            first.set()

    asked: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if asked:
            return asked.pop()
        await asyncio.Event().wait()  # then the visitor stays
        raise AssertionError("unreachable")

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/products/tee/events",
        "raw_path": b"/v1/products/tee/events",
        "query_string": b"",
        "headers": [(b"accept", b"text/event-stream")],
        "client": ("203.0.113.9", 4000),
        "server": ("shop", 80),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
        "app": shop,
    }
    async with shop.router.lifespan_context(shop):
        relaying = asyncio.create_task(shop(scope, receive, send))
        await first.wait()
        bodies = [m["body"] for m in sent if m["type"] == "http.response.body"]
        assert bodies == [b'event: stock\ndata: {"available": 5}\n\n']
        [start] = [m for m in sent if m["type"] == "http.response.start"]
        assert (b"content-type", b"text/event-stream") in start["headers"]
        second.set()
        await relaying
    bodies = [m["body"] for m in sent if m["type"] == "http.response.body" and m["body"]]
    assert bodies[-1] == b'event: stock\ndata: {"available": 4}\n\n'
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    [request] = seen
    assert request.extensions["timeout"]["read"] is None
