"""Customer tokens verified by a real `reservation serve` (issue 24): every refusal, with a
secret (HS256), a public key (RS256) and a JWKS (ES256, rotated), through HTTP."""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import ECAlgorithm

from tests.server import Server
from tests.tokens import (
    ISSUER,
    SECRET,
    bearer,
    hs256_with,
    mint,
    name,
    put_product,
    refused,
    reserve,
    reserved,
    serving,
)

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_PEM = RSA_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """Customer ids verified by an HS256 secret and an issuer."""
    with serving(
        tmp_path_factory.mktemp("hs256"),
        mongodb_uri,
        RESERVATION_CUSTOMER_TOKEN_SECRET=SECRET,
        RESERVATION_CUSTOMER_TOKEN_ISSUER=ISSUER,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> Iterator[Server]:
    """Customer ids verified by an RSA public key (RS256), written with `\\n` for line breaks."""
    with serving(
        tmp_path_factory.mktemp("rs256"),
        mongodb_uri,
        RESERVATION_CUSTOMER_TOKEN_PUBLIC_KEY=RSA_PUBLIC_PEM.decode().replace("\n", "\\n"),
    ) as server:
        yield server


def now() -> int:
    return int(time.time())


def hs512(sub: str) -> str:
    """A token signed with the service's own secret, by an algorithm it does not take."""
    # PyJWT 2.10+ warns that a 43-byte key is short for SHA-512 (InsecureKeyLengthWarning, a
    # name older releases lack: the floors CI job runs these tests on PyJWT 2.8).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mint(sub, algorithm="HS512")


# Each token refused with 401 invalid_customer_token by the HS256 service.
BAD_TOKENS: dict[str, Callable[[], str]] = {
    "expired past the leeway": lambda: mint("alice", exp=now() - 120),
    "not yet valid": lambda: mint("alice", nbf=now() + 120),
    "issued in the future": lambda: mint("alice", iat=now() + 120),
    "wrong secret": lambda: mint("alice", key="another-secret-of-at-least-32-characters!"),
    "wrong audience": lambda: mint("alice", aud="another-service"),
    "wrong issuer": lambda: mint("alice", iss="https://evil.test"),
    "no issuer": lambda: mint("alice", iss=None),
    "no exp": lambda: mint("alice", exp=None),
    "no sub": lambda: mint(None),
    "a sub that is no customer id": lambda: mint("alice smith"),
    "alg none": lambda: mint("alice", key=None, algorithm="none"),
    "HS512, not allowed": lambda: hs512("alice"),
    "not a JWT": lambda: "not.a.jwt",
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_token_that_does_not_verify_is_refused_and_holds_nothing(shop: Server, case: str) -> None:
    with httpx.Client(base_url=shop.url, timeout=10) as client:
        sku = put_product(client, 5)
        refused(reserve(client, sku, BAD_TOKENS[case]()), 401, "invalid_customer_token")
        refused(
            reserve(client, sku, BAD_TOKENS[case](), customer_id="alice"),
            401,
            "invalid_customer_token",
        )
        checkout = client.post(
            "/v1/checkout",
            json={"items": [{"sku": sku, "quantity": 1}]},
            headers=bearer(BAD_TOKENS[case]()),
        )
        refused(checkout, 401, "invalid_customer_token")
        assert reserved(client, sku) == 0


def test_the_scheme_must_be_bearer(shop: Server) -> None:
    with httpx.Client(base_url=shop.url, timeout=10) as client:
        sku = put_product(client, 5)
        basic = {"Authorization": f"Basic {mint('alice')}"}
        answer = client.post(
            "/v1/reservations", json={"items": [{"sku": sku, "quantity": 1}]}, headers=basic
        )
        refused(answer, 401, "invalid_customer_token")


def test_a_token_expired_within_the_leeway_is_taken(shop: Server) -> None:
    alice = name("alice")
    with httpx.Client(base_url=shop.url, timeout=10) as client:
        sku = put_product(client, 5)
        held = reserve(client, sku, mint(alice, exp=now() - 10))
        assert held.status_code == 201, held.text
        assert held.json()["customer_id"] == alice


def test_a_body_customer_needs_the_token_that_names_it(shop: Server) -> None:
    alice, bob = name("alice"), name("bob")
    with httpx.Client(base_url=shop.url, timeout=10) as client:
        sku = put_product(client, 5)
        refused(reserve(client, sku, customer_id=bob), 401, "customer_token_required")
        refused(reserve(client, sku, mint(alice), customer_id=bob), 403, "customer_mismatch")
        assert reserved(client, sku) == 0
        same = reserve(client, sku, mint(alice), customer_id=alice)
        assert (same.status_code, same.json()["customer_id"]) == (201, alice)


def test_rs256_with_the_public_key_and_no_algorithm_confusion(keyed: Server) -> None:
    alice = name("alice")
    with httpx.Client(base_url=keyed.url, timeout=10) as client:
        sku = put_product(client, 5)
        held = reserve(client, sku, mint(alice, key=RSA_KEY, algorithm="RS256", iss=None))
        assert (held.status_code, held.json()["customer_id"]) == (201, alice)
        # HS256 "signed" with the public key's bytes: what a verifier that lets the token
        # choose the algorithm would take.
        refused(
            reserve(client, sku, hs256_with(RSA_PUBLIC_PEM, alice)), 401, "invalid_customer_token"
        )
        refused(reserve(client, sku, mint(alice)), 401, "invalid_customer_token")
        none = mint(alice, key=None, algorithm="none")
        refused(reserve(client, sku, none), 401, "invalid_customer_token")
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = mint(alice, key=other, algorithm="RS256")
        refused(reserve(client, sku, forged), 401, "invalid_customer_token")
        assert reserved(client, sku) == 1


class Jwks:
    """A shop's JWKS endpoint on a loopback port: its keys can be rotated; it counts fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, **keys: ec.EllipticCurvePrivateKey) -> None:
        published = []
        for kid, key in keys.items():
            jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
            published.append({**jwk, "kid": kid, "alg": "ES256", "use": "sig"})
        self.keys = published


def test_jwks_keys_are_cached_and_refreshed_once_on_an_unknown_kid(
    tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str
) -> None:
    jwks = Jwks()
    first, second = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    jwks.publish(k1=first)

    def signed(key: ec.EllipticCurvePrivateKey, kid: str, sub: str) -> str:
        return mint(sub, key=key, algorithm="ES256", iss=None, headers={"kid": kid})

    try:
        with (
            serving(
                tmp_path_factory.mktemp("jwks"), mongodb_uri, RESERVATION_CUSTOMER_JWKS_URL=jwks.url
            ) as server,
            httpx.Client(base_url=server.url, timeout=10) as client,
        ):
            sku = put_product(client, 10)
            for _ in range(3):
                assert reserve(client, sku, signed(first, "k1", name("alice"))).status_code == 201
            assert jwks.fetches == 1  # fetched once, not per request
            # The shop rotates: k2 replaces k1. A token of k2 makes one refresh.
            jwks.publish(k2=second)
            assert reserve(client, sku, signed(second, "k2", name("bob"))).status_code == 201
            assert jwks.fetches == 2
            # k1 is gone; an invented kid is refused without another fetch (the cooldown).
            old = reserve(client, sku, signed(first, "k1", name("alice")))
            refused(old, 401, "invalid_customer_token")
            invented = reserve(client, sku, signed(second, "k9", name("mallory")))
            refused(invented, 401, "invalid_customer_token")
            # A key of the JWKS signing for another kid's name is still another key.
            refused(reserve(client, sku, signed(first, "k2", "eve")), 401, "invalid_customer_token")
            assert jwks.fetches == 2
            assert reserved(client, sku) == 4
    finally:
        jwks.server.shutdown()
        jwks.server.server_close()
