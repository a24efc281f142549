"""Customer tokens: JWTs the shop's backend signs, verified by PyJWT before a buyer's request
holds, counts or keeps anything.

A token is sent as `Authorization: Bearer <token>`. It must carry `sub` (the customer id, by
the rules of a body's `customer_id`: domain/rules.py) and `exp`, an `aud` equal to
RESERVATION_CUSTOMER_TOKEN_AUDIENCE, and `iss` when RESERVATION_CUSTOMER_TOKEN_ISSUER is set;
`exp`, `nbf` and `iat` are checked with RESERVATION_CUSTOMER_TOKEN_LEEWAY_SECONDS of leeway.
The algorithms are an allow-list fixed by the kind of key, never read from the token alone:
HS256 for a secret, RS256 or ES256 for a public key or a JWKS (what the key is), so `alg: none`
and an HS256 token "signed" with a public key's bytes are refused.
"""

from __future__ import annotations

import re
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from domain import errors
from domain.rules import CUSTOMER_REGEX
from reservation.customers.caller import ANYONE, Caller
from reservation.customers.jwks import JwksKeys
from reservation.customers.verified import VerifiedTokens
from reservation.settings import Settings

CUSTOMER_PATTERN = re.compile(CUSTOMER_REGEX)
# A token longer than this is refused unread (a real one is a few hundred bytes).
MAX_TOKEN = 8192
JWKS_ALGORITHMS = ["RS256", "ES256"]


class CustomerTokens:
    """The verifier of one configured key: a request's Authorization header → its Caller."""

    def __init__(self, settings: Settings) -> None:
        settings.check()  # at most one key
        self.verifying = settings.verifies_customers
        self.jwks = (
            None if settings.customer_jwks_url is None else JwksKeys(settings.customer_jwks_url)
        )
        self.key: Any = settings.customer_token_secret
        self.algorithms = ["HS256"]
        if settings.customer_token_public_key is not None:
            self.key = load_pem_public_key(settings.customer_token_public_key.encode())
            self.algorithms = ["RS256" if isinstance(self.key, rsa.RSAPublicKey) else "ES256"]
        if self.jwks is not None:
            self.algorithms = JWKS_ALGORITHMS
        self.audience = settings.customer_token_audience
        self.issuer = settings.customer_token_issuer
        self.leeway = settings.customer_token_leeway_seconds
        required = ["exp", "sub", "aud"] + ([] if self.issuer is None else ["iss"])
        self.options: Any = {"require": required}
        self.verified = VerifiedTokens(self.leeway)

    async def caller(self, authorization: str | None) -> Caller:
        """Who sent a request with this Authorization header (None: it had none);
        InvalidCustomerToken if its token does not verify. Without a key: ANYONE, whatever
        the header says."""
        if not self.verifying:
            return ANYONE
        if authorization is None:
            return Caller(verifying=True)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN:
            raise errors.InvalidCustomerToken(
                "a customer token is sent as `Authorization: Bearer <token>`"
            )
        return Caller(await self.subject(token), verifying=True)

    async def subject(self, token: str) -> str:
        """The customer id (`sub`) of a token that verifies; InvalidCustomerToken otherwise."""
        known = self.verified.subject(token)
        if known is not None:
            return known
        try:
            key = self.key if self.jwks is None else await self.jwks.key(self._kid(token))
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options=self.options,
            )
        except jwt.PyJWTError as exc:
            message = f"the customer token does not verify: {exc}"
            raise errors.InvalidCustomerToken(message) from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not CUSTOMER_PATTERN.fullmatch(subject):
            raise errors.InvalidCustomerToken(
                "the customer token's sub is not a customer id (1 to 128 printable ASCII"
                " characters)"
            )
        expires_at = claims["exp"]
        if isinstance(expires_at, int | float):
            self.verified.keep(token, subject, float(expires_at))
        return subject

    @staticmethod
    def _kid(token: str) -> str:
        kid = jwt.get_unverified_header(token).get("kid")
        if not isinstance(kid, str) or not kid:
            raise errors.InvalidCustomerToken("the customer token names no key (kid)")
        return kid
