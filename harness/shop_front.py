"""The demo's shop backend: a name in, a customer token out; the waiting list's webhooks in
and the buyer's offers out (harness/shop_offers.py); and the storefront's origin.

A real shop mints its buyers' tokens from its own login. The demo has no login: a visitor types
a name in the storefront, and `POST /shop/token` signs that name (as a customer id) into a
token with the secret the demo gave the service (RESERVATION_CUSTOMER_TOKEN_SECRET). Anybody
may be anybody here; that is the demo's login, not a way to run a shop.

The storefront calls only its own origin (reservation/api/pages.py's Content-Security-Policy
says `connect-src 'self'`), so this server is that origin: it answers /shop itself and passes
every other request to the service as it came (the visitor's address in X-Forwarded-For, which
the service ignores unless RESERVATION_TRUSTED_PROXY_HEADER names it), and streams the answer
back as it comes, so the storefront's live stock (Server-Sent Events) passes through event by
event. No CORS is needed, none is offered.

    python -m harness.shop_front --port 8000 --upstream http://127.0.0.1:8001
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import time
import unicodedata
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from harness.customer_tokens import AUDIENCE, LIFETIME_SECONDS, SECRET_VARIABLE, mint
from harness.shop_hooks import ShopHooks
from harness.shop_offers import HOOKS_SECRET_VARIABLE, ShopOffers

MAX_NAME = 40
# Headers about one hop, not the message: never passed on (RFC 9110 7.6.1), and the
# addresses a visitor may claim (this server writes the one it saw).
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
}
CLAIMED_ADDRESS = {"forwarded", "x-forwarded-for", "x-real-ip"}
NOT_FORWARDED = HOP_BY_HOP | CLAIMED_ADDRESS
NO_STORE = {"Cache-Control": "no-store"}
TIMEOUT_SECONDS = 30


def customer_of(name: str) -> str | None:
    """The customer id a name stands for ("José Díaz" -> "jose-diaz"); None without a letter
    or digit."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:MAX_NAME].strip("-")
    return slug or None


def refused(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status, headers=NO_STORE)


async def about(request: Request) -> JSONResponse:
    """What the storefront asks to know whether a shop backend is there, and whether it hears
    of the waiting list's offers (`GET /shop/offers`)."""
    offers = request.app.state.offers.hooks is not None
    return JSONResponse({"tokens": True, "audience": AUDIENCE, "offers": offers}, headers=NO_STORE)


async def token(request: Request) -> JSONResponse:
    """A token for the name in the JSON body: {token, customer_id, name, expires_at}."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return refused(415, "unsupported_media_type", "Send the name as JSON.")
    try:
        body = await request.json()
    except ValueError:
        return refused(400, "malformed_json", "The body is not JSON.")
    name = body.get("name") if isinstance(body, dict) else None
    name = name.strip() if isinstance(name, str) else ""
    customer_id = customer_of(name)
    if not 1 <= len(name) <= MAX_NAME or customer_id is None:
        return refused(422, "invalid_name", f"Type a name of 1 to {MAX_NAME} letters or digits.")
    now = time.time()
    expires_at = datetime.fromtimestamp(now + LIFETIME_SECONDS, UTC).isoformat()
    minted = mint(customer_id, request.app.state.secret, now=now)
    answer = {"token": minted, "customer_id": customer_id, "name": name, "expires_at": expires_at}
    return JSONResponse(answer, headers=NO_STORE)


async def forward(request: Request) -> Response:
    """The request, passed to the service; its answer, passed back as it comes: streamed, so
    that a stream of events (`/v1/products/{sku}/events`) reaches the page event by event."""
    upstream: httpx.AsyncClient = request.app.state.upstream
    headers = [
        (key, value)
        for key, value in request.headers.raw
        if key.decode("latin-1").lower() not in NOT_FORWARDED
    ]
    if request.client is not None:
        headers.append((b"x-forwarded-for", request.client.host.encode()))
    target = request.scope.get("raw_path") or request.url.path.encode()
    if request.url.query:
        target += b"?" + request.url.query.encode("latin-1")
    # A stream of events stays quiet for as long as nothing changes (the service sends a
    # keep-alive comment every 15 s): no read timeout for one.
    events = "text/event-stream" in request.headers.get("accept", "")
    sent = upstream.build_request(
        request.method,
        target.decode("latin-1"),
        headers=headers,
        content=await request.body(),
        timeout=httpx.Timeout(TIMEOUT_SECONDS, read=None) if events else TIMEOUT_SECONDS,
    )
    try:
        answer = await upstream.send(sent, stream=True)
    except httpx.HTTPError:
        return refused(502, "bad_gateway", "The reservation service cannot be reached.")
    return Relayed(answer)


class Relayed(StreamingResponse):
    """An answer of the service, passed on as it comes (its hop-by-hop headers left out), its
    connection to the service closed however the visitor's ends."""

    def __init__(self, answer: httpx.Response) -> None:
        super().__init__(answer.aiter_raw(), answer.status_code)
        self.answer = answer
        self.raw_headers = [  # lower case, as ASGI has header names
            (key.lower(), value)
            for key, value in answer.headers.raw
            if key.decode("latin-1").lower() not in HOP_BY_HOP
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except httpx.HTTPError:
            pass  # the service went away mid-answer: the visitor's connection ends too
        finally:
            await self.answer.aclose()


def app(
    secret: str,
    upstream: str,
    transport: httpx.AsyncBaseTransport | None = None,
    hooks: ShopHooks | None = None,
) -> Starlette:
    """The shop backend: /shop, /shop/token, /shop/offers and (with `hooks`, the receiver of
    the service's webhooks) /shop/hooks here, everything else at `upstream` (through
    `transport`, for the tests; default: the network)."""

    @contextlib.asynccontextmanager
    async def lifespan(application: Starlette) -> AsyncIterator[None]:
        # One connection per open stream of events: no cap on the pool (the service caps its
        # streams, RESERVATION_MAX_STREAMS).
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=20)
        client = httpx.AsyncClient(
            base_url=upstream, timeout=TIMEOUT_SECONDS, limits=limits, transport=transport
        )
        async with client:
            application.state.upstream = client
            yield

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    offers = ShopOffers(secret, hooks)
    routes = [
        Route("/shop", about, methods=["GET"]),
        Route("/shop/token", token, methods=["POST"]),
        *offers.routes(),
        Route("/{path:path}", forward, methods=methods),
    ]
    application = Starlette(routes=routes, lifespan=lifespan)
    application.state.secret = secret
    application.state.offers = offers
    return application


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the shop backend; the secrets come from the environment, never the command line
    (which every user of the machine can read): the customer tokens', and the shop webhooks'
    (RESERVATION_SHOP_WEBHOOK_SECRET; unset: no /shop/hooks)."""
    parser = argparse.ArgumentParser(prog="python -m harness.shop_front", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--upstream", required=True, help="the reservation service's URL")
    args = parser.parse_args(argv)
    secret = os.environ.get(SECRET_VARIABLE, "")
    if len(secret) < 32:
        parser.error(f"{SECRET_VARIABLE} must hold the service's secret (32 characters or more)")
    hooks_secret = os.environ.get(HOOKS_SECRET_VARIABLE, "")
    hooks = ShopHooks(hooks_secret) if hooks_secret else None
    uvicorn.run(
        app(secret, args.upstream, hooks=hooks),
        host=args.host,
        port=args.port,
        proxy_headers=False,  # the visitor's own address, whatever headers it sends
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
