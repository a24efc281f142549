"""Admin endpoints: a bearer token, compared in constant time; no token configured, no admin."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from domain import errors


def require_admin(request: Request, token: str | None) -> None:
    if token is None:
        raise errors.Unauthorized("admin endpoints are off: RESERVATION_ADMIN_TOKEN is not set")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise errors.Unauthorized("a valid admin bearer token is required")


def is_admin(request: Request, token: str | None) -> bool:
    """Whether the request carries the admin bearer token (never, when none is configured)."""
    try:
        require_admin(request, token)
    except errors.Unauthorized:
        return False
    return True
