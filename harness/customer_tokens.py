"""Customer tokens as a shop mints them: what the demo's shop backend and the load tests' buyers
do, and what the README shows a real shop doing (a few lines of PyJWT).

A shop knows who its buyer is (a login, a session); it signs that customer id into a short-lived
JWT with the secret it shares with the service (RESERVATION_CUSTOMER_TOKEN_SECRET), and the
buyer's requests carry it as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import secrets
import time

import jwt

# The service's default RESERVATION_CUSTOMER_TOKEN_AUDIENCE.
AUDIENCE = "reservation"
LIFETIME_SECONDS = 15 * 60
# The environment variable the service reads the shared secret from.
SECRET_VARIABLE = "RESERVATION_CUSTOMER_TOKEN_SECRET"


def new_secret() -> str:
    """A fresh HS256 secret: 43 URL-safe characters (the service wants at least 32)."""
    return secrets.token_urlsafe(32)


def mint(customer_id: str, secret: str, *, now: float | None = None) -> str:
    """A token saying the bearer is `customer_id`, valid for 15 minutes."""
    issued = int(time.time() if now is None else now)
    claims = {"sub": customer_id, "aud": AUDIENCE, "exp": issued + LIFETIME_SECONDS, "iat": issued}
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    """The header that carries `token`."""
    return {"Authorization": f"Bearer {token}"}
