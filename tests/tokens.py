"""Customer tokens as a shop mints them (README, *Customer tokens*), and bad ones, for the tests
of reservation/customers/ through a real `reservation serve`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import httpx
import jwt

from tests.api import ADMIN
from tests.server import Server, start_server, stop_server

SECRET = "shop-customer-token-secret-0123456789abcdef"
ISSUER = "https://shop.test"
AUDIENCE = "reservation"


def mint(sub: str | None, key: Any = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    """A token for `sub` valid for 15 minutes; `claims` replace or add claims (None drops one);
    `headers` in claims are the JOSE header's extra fields (e.g. `kid`)."""
    now = int(time.time())
    headers = claims.pop("headers", None)
    body: dict[str, Any] = {
        "sub": sub,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": now + 900,
        "iat": now,
    }
    body.update(claims)
    body = {name: value for name, value in body.items() if value is not None}
    return jwt.encode(body, key, algorithm=algorithm, headers=headers)


def hs256_with(key: bytes, sub: str) -> str:
    """An HS256 token whose "secret" is `key` (a public key's PEM bytes, in the algorithm
    confusion attack), signed by hand: PyJWT itself refuses to make one."""

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    now = int(time.time())
    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": sub, "aud": AUDIENCE, "iss": ISSUER, "exp": now + 900}
    payload = part(json.dumps(claims).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{part(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def name(who: str) -> str:
    """A customer id of this test alone (the servers are shared by a module's tests)."""
    return f"{who}-{uuid.uuid4().hex[:8]}"


def put_product(client: httpx.Client, stock: int, **fields: Any) -> str:
    """A product of this test alone; its SKU."""
    sku = name("sku")
    body = {"name": "Drop", "price": 2500, "currency": "eur", "stock": stock, **fields}
    assert client.put(f"/v1/products/{sku}", json=body, headers=ADMIN).status_code == 200
    return sku


def reserve(
    client: httpx.Client, sku: str, token: str | None = None, **fields: Any
) -> httpx.Response:
    body = {"items": [{"sku": sku, "quantity": 1}], **fields}
    return client.post("/v1/reservations", json=body, headers=bearer(token) if token else {})


def reserved(client: httpx.Client, sku: str) -> int:
    count: int = client.get(f"/v1/products/{sku}").json()["reserved"]
    return count


def refused(answer: httpx.Response, status: int, code: str) -> None:
    """`answer` is the refusal `code`; a 401 names the scheme it asks for."""
    assert (answer.status_code, answer.json()["error"]) == (status, code), answer.text
    if status == 401:
        assert answer.headers["WWW-Authenticate"] == "Bearer"


@contextmanager
def serving(workdir: Path, mongodb_uri: str, **env: str) -> Iterator[Server]:
    """`reservation serve` with `env` (no limit per client address: every test's requests come
    from 127.0.0.1), stopped after the block."""
    env = {"RESERVATION_IP_RATE_LIMIT": "0", **env}
    # `env` holds variables only (start_server's own keyword, `port`, is not one of them).
    server = start_server(workdir, mongodb_uri, **cast("dict[str, Any]", env))
    try:
        yield server
    finally:
        stop_server(server, mongodb_uri)
