"""Stripe: the client, and the one bounded gate every Stripe call goes through.

The gate bounds concurrency per process (a semaphore), the rate of the whole Stripe account (a
sliding log in Redis that every process shares: core/ratelimit.py's SharedRate; this process's
own leaky bucket, aiolimiter, while Redis does not answer), and the whole wait of a caller
(asyncio.timeout over queueing, attempts and backoff). Network errors and 5xx
are retried by the stripe library itself (max_network_retries, jittered exponential backoff);
429 is not retried by the library, so the gate retries it, honouring Retry-After. When the
bound is reached the caller gets PaymentProviderUnavailable (503 with Retry-After).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import stripe
from aiolimiter import AsyncLimiter

from domain.errors import PaymentProviderUnavailable, StorageUnavailable
from domain.outcomes import Admitted
from reservation.core.keys import KeySpace
from reservation.core.ratelimit import SharedRate
from reservation.lua.library import RedisClient
from reservation.settings import Settings

T = TypeVar("T")
logger = logging.getLogger("reservation.payments")
BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 2.0
# After Redis failed to admit a call, this process paces its calls alone for this long before
# asking Redis again (so a Redis that hangs does not cost every call its timeout).
SHARED_RETRY_SECONDS = 1.0


def stripe_client(settings: Settings) -> tuple[stripe.StripeClient, stripe.HTTPXClient]:
    """A StripeClient over httpx (async), pointed at STRIPE_API_BASE when set."""
    attempts = max(settings.stripe_max_attempts, 1)
    # Each attempt gets a share of the total bound, so a hanging Stripe is retried in time.
    http_client = stripe.HTTPXClient(timeout=settings.stripe_timeout_seconds / attempts)
    base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
    client = stripe.StripeClient(
        settings.stripe_secret_key or "sk_unset",
        base_addresses=base,  # type: ignore[arg-type]
        http_client=http_client,
        max_network_retries=attempts - 1,
    )
    return client, http_client


class StripeGate:
    def __init__(
        self,
        *,
        concurrency: int,
        rate_per_second: float,
        timeout_seconds: float,
        max_attempts: int,
        configured: bool = True,
        shared: SharedRate | None = None,
    ) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self.in_flight = 0  # calls inside the semaphore now (the operations page shows them)
        # The rate of every process together, in Redis; this process's own limiter paces it
        # alone when there is no shared rate, or while Redis does not answer.
        self.shared = shared
        self.limiter = AsyncLimiter(rate_per_second, 1.0)
        self.shared_down_until = 0.0
        self.limited_until = 0.0
        self.timeout_seconds = timeout_seconds
        self.max_attempts = max(max_attempts, 1)
        self.configured = configured

    @classmethod
    def from_settings(cls, settings: Settings, redis: RedisClient | None = None) -> StripeGate:
        """The gate of STRIPE_*; with `redis`, its rate is shared by every process."""
        rate = settings.stripe_rate_per_second
        key = KeySpace(settings.key_prefix).stripe_rate
        return cls(
            concurrency=settings.stripe_concurrency,
            rate_per_second=settings.stripe_rate_per_second,
            timeout_seconds=settings.stripe_timeout_seconds,
            max_attempts=settings.stripe_max_attempts,
            configured=settings.stripe_secret_key is not None,
            shared=None if redis is None else SharedRate(redis, key, rate),
        )

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.timeout_seconds))

    def unavailable(self, why: str, *, sent: bool = True) -> PaymentProviderUnavailable:
        return PaymentProviderUnavailable(
            f"the payment provider is unavailable: {why}", retry_after=self.retry_after, sent=sent
        )

    async def call(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        action: str = "call",
        context: Mapping[str, object] | None = None,
    ) -> T:
        """Run one Stripe call within the gate's bounds. `action` and `context` (reservation,
        session…) name the call in the log lines of retries and refusals."""
        extra = {**(context or {}), "stripe_action": action}
        if not self.configured:
            raise self._unavailable("STRIPE_SECRET_KEY is not configured", extra, sent=False)
        sent: list[bool] = []
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await self._attempts(operation, extra, sent)
        except TimeoutError:
            # The gate is saturated (every slot taken, or the rate spent) or Stripe hangs.
            why = f"no answer within {self.timeout_seconds:g} s"
            context = {**extra, "gate_saturated": self.saturated}
            raise self._unavailable(why, context, sent=bool(sent)) from None
        except stripe.RateLimitError as exc:
            raise self._unavailable("rate limited", extra) from exc
        except (stripe.APIConnectionError, stripe.APIError) as exc:
            raise self._unavailable(type(exc).__name__, extra) from exc

    @property
    def saturated(self) -> bool:
        """Every concurrent slot is taken or the rate is spent: a new call has to queue."""
        rate_spent = time.monotonic() < self.limited_until or not self.limiter.has_capacity()
        return self.semaphore.locked() or rate_spent

    async def _admitted(self, extra: Mapping[str, object]) -> None:
        """Wait until the rate admits one more call: the shared rate in Redis (waiting as long
        as it says), or this process's own limiter when Redis does not answer."""
        while self.shared is not None and time.monotonic() >= self.shared_down_until:
            try:
                outcome = await self.shared.admit()
            except StorageUnavailable as exc:
                self.shared_down_until = time.monotonic() + SHARED_RETRY_SECONDS
                logger.warning(
                    "the shared Stripe rate is unavailable (%s): this process paces its calls"
                    " alone for %g s",
                    exc,
                    SHARED_RETRY_SECONDS,
                    extra={**extra, "reason": str(exc)},
                )
                break
            if isinstance(outcome, Admitted):
                return
            wait = outcome.retry_after_ms / 1000
            self.limited_until = max(self.limited_until, time.monotonic() + wait)
            await asyncio.sleep(wait)
        await self.limiter.acquire()

    def _unavailable(
        self, why: str, extra: Mapping[str, object], *, sent: bool = True
    ) -> PaymentProviderUnavailable:
        logger.warning(
            "Stripe %s unavailable, answered 503: %s",
            extra["stripe_action"],
            why,
            extra={**extra, "reason": why, "request_sent": sent},
        )
        return self.unavailable(why, sent=sent)

    async def _attempts(
        self, operation: Callable[[], Awaitable[T]], extra: Mapping[str, object], sent: list[bool]
    ) -> T:
        """The operation, retried on 429; `sent` gets an entry once a request may have left."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self.semaphore:
                    self.in_flight += 1
                    try:
                        await self._admitted(extra)
                        sent.append(True)
                        return await operation()
                    finally:
                        self.in_flight -= 1
            except stripe.RateLimitError as exc:
                if attempt == self.max_attempts:
                    raise
                delay = self._backoff(attempt, exc)
                logger.info(
                    "Stripe %s rate limited (attempt %d of %d), retrying in %.2f s",
                    extra["stripe_action"],
                    attempt,
                    self.max_attempts,
                    delay,
                    extra={**extra, "attempt": attempt, "retry_in_seconds": round(delay, 3)},
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _backoff(attempt: int, exc: stripe.RateLimitError) -> float:
        ceiling = min(BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
        advised = (exc.headers or {}).get("retry-after") or (exc.headers or {}).get("Retry-After")
        if advised is not None and str(advised).isdigit():
            ceiling = min(max(ceiling, float(advised)), MAX_BACKOFF_SECONDS)
        return float(ceiling * (0.5 + random.random() / 2))
