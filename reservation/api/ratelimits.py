"""Where the handlers apply the rate limits: per client address before a body is read, per
customer id once it is known. A refusal is 429 `rate_limited` with Retry-After, before
anything is held or Stripe is asked (reservation/ratelimit.py keeps the counts)."""

from __future__ import annotations

from starlette.requests import Request

from reservation.api.client_address import client_address
from reservation.api.services import Services
from reservation.core.ratelimit import CUSTOMER, IP


async def limit_client(state: Services, request: Request) -> None:
    """Count this request against its client address (RateLimited past the limit)."""
    if state.rate_limiter.on(IP):
        address = client_address(request, state.settings.trusted_proxy_header)
        await state.rate_limiter.check(IP, address)


async def limit_customer(state: Services, customer_id: str | None) -> None:
    """Count this request against its customer id, when it has one."""
    if customer_id is not None and state.rate_limiter.on(CUSTOMER):
        await state.rate_limiter.check(CUSTOMER, customer_id)
