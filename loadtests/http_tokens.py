"""Customer tokens in the HTTP benchmark (issue 24): the HS256 secret the run's server verifies
with, a token for its buyer, and what one verification costs in this process for each algorithm
the service accepts (HS256 with a secret; RS256 and ES256 with a public key or a JWKS)."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

# A fixed secret of the benchmark alone (not a secret: it guards nothing outside a run).
SECRET = "bench-http-customer-token-secret-0123456789"
AUDIENCE = "reservation"
BUYER = "bench-buyer"
VERIFICATIONS = 5000  # per algorithm, in `verification_costs`


def claims(buyer: str = BUYER, seconds: int = 24 * 3600) -> dict[str, object]:
    now = int(time.time())
    return {"sub": buyer, "aud": AUDIENCE, "iat": now, "exp": now + seconds}


def bench_tokens(count: int) -> list[str]:
    """`count` buyers' tokens, as a shop's backend mints them (HS256, a day long)."""
    return [jwt.encode(claims(f"{BUYER}-{n:06d}"), SECRET, algorithm="HS256") for n in range(count)]


def _timed(verify: Callable[[], object], count: int) -> float:
    verify()  # warm: PyJWT and cryptography load what they need on first use
    started = time.perf_counter()
    for _ in range(count):
        verify()
    return (time.perf_counter() - started) / count * 1e6


def verification_costs(count: int = VERIFICATIONS) -> dict[str, float]:
    """µs per `jwt.decode` of one token (signature, exp, aud), by algorithm, in this process."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys: dict[str, tuple[object, object]] = {
        "HS256": (SECRET, SECRET),
        "RS256": (rsa_key, _pem(rsa_key.public_key())),
        "ES256": (ec_key, _pem(ec_key.public_key())),
    }
    costs = {}
    for algorithm, (signing, verifying) in keys.items():
        token = jwt.encode(claims(), signing, algorithm=algorithm)  # type: ignore[arg-type]

        def verify(token: str = token, key: object = verifying, alg: str = algorithm) -> object:
            return jwt.decode(token, key, algorithms=[alg], audience=AUDIENCE)  # type: ignore[arg-type]

        costs[algorithm] = _timed(verify, count)
    return costs


def _pem(public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
