"""The memory of tokens verified a moment ago (reservation/customers/verified.py): a repeat is
not verified again, and nothing is accepted past what `jwt.decode` itself would accept."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import jwt
import pytest

from domain import errors
from reservation.customers.tokens import CustomerTokens
from reservation.customers.verified import VerifiedTokens
from reservation.settings import Settings
from tests.tokens import ISSUER, SECRET, mint


def verifier() -> CustomerTokens:
    settings = replace(Settings(), customer_token_secret=SECRET, customer_token_issuer=ISSUER)
    return CustomerTokens(settings)


def test_a_token_lasts_until_its_exp_plus_the_leeway() -> None:
    now = [1000.0]
    memory = VerifiedTokens(leeway_seconds=30, clock=lambda: now[0])
    memory.keep("t", "alice", expires_at=1100)
    assert memory.subject("t") == "alice"
    now[0] = 1129.9
    assert memory.subject("t") == "alice"
    now[0] = 1130.0
    assert memory.subject("t") is None
    now[0] = 1000.0
    assert memory.subject("t") is None  # a lapsed entry is gone, not kept for later


def test_the_oldest_token_leaves_first_when_the_memory_is_full() -> None:
    memory = VerifiedTokens(leeway_seconds=0, size=2, clock=lambda: 0.0)
    memory.keep("a", "alice", expires_at=10)
    memory.keep("b", "bob", expires_at=10)
    memory.keep("c", "carol", expires_at=10)
    assert (memory.subject("a"), memory.subject("b"), memory.subject("c")) == (
        None,
        "bob",
        "carol",
    )


def test_a_repeated_token_is_verified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = verifier()
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting(token: str, *args: object, **kwargs: object) -> object:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    alice = mint("alice")
    for _ in range(3):
        assert asyncio.run(tokens.subject(alice)) == "alice"
    assert decoded == [alice]


def test_refused_and_expired_tokens_are_never_remembered() -> None:
    tokens = verifier()
    forged = mint("alice", key="another-secret-of-at-least-32-characters")
    expired = mint("alice", exp=1)
    for token in (forged, expired, forged, expired):
        with pytest.raises(errors.InvalidCustomerToken):
            asyncio.run(tokens.subject(token))
    assert tokens.verified.subject(forged) is None
    assert tokens.verified.subject(expired) is None
