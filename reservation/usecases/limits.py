"""The rate limits a request is counted against: its client address, and its customer id once
known. A refusal is RateLimited (429 with Retry-After), before anything is held or Stripe is
asked (reservation/core/ratelimit.py keeps the counts in Redis)."""

from __future__ import annotations

from reservation.core.ratelimit import CUSTOMER, IP, RateLimiter


async def limit_client(limiter: RateLimiter, address: str) -> None:
    """Count this request against its client address (RateLimited past the limit)."""
    if limiter.on(IP):
        await limiter.check(IP, address)


async def limit_customer(limiter: RateLimiter, customer_id: str | None) -> None:
    """Count this request against its customer id, when it has one."""
    if customer_id is not None and limiter.on(CUSTOMER):
        await limiter.check(CUSTOMER, customer_id)
