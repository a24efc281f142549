"""Rate limits shared by every process: a sliding log per client in Redis.

Each client (a client address, or a customer id) has one sorted set of the requests it was
admitted for (`lua/rate_limit.lua`). A request is admitted when fewer than `requests` were
admitted in the `window_seconds` before it, by Redis's clock: no span of that length ever
admits more, unlike a fixed window, which lets twice the limit through across a boundary. A
refused request is not logged, and `Retry-After` is when the oldest logged request leaves the
window. Memory: at most `requests` entries per client, gone one window after its last request.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from redis.exceptions import RedisError

from domain import errors
from domain.outcomes import Admitted, Limited
from reservation.core.keys import KeySpace
from reservation.core.redis_errors import storage_unavailable
from reservation.lua._pool import refused_argument
from reservation.lua.library import STANDALONE_NAMES, RedisClient, Scripts
from reservation.lua.rate_limit import decode as decode_rate_limit

IP = "ip"
CUSTOMER = "customer"
WHO = {IP: "this client address", CUSTOMER: "this customer"}
# The most the script takes (lua/rate_limit.lua): 10^12 requests in a window of 10^15 ms.
MAX_REQUESTS = 10**12
MAX_WINDOW_SECONDS = 10**12


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `requests` in any `window_seconds`; either 0 turns the limit off."""

    requests: int
    window_seconds: float

    def __post_init__(self) -> None:
        if not (
            0 <= self.requests <= MAX_REQUESTS and 0 <= self.window_seconds <= MAX_WINDOW_SECONDS
        ):
            raise ValueError(
                "a rate limit takes 0 to 10^12 requests in 0 to 10^12 seconds (0: off),"
                f" not {self.requests} in {self.window_seconds}"
            )

    @property
    def on(self) -> bool:
        return self.requests > 0 and self.window_seconds > 0

    @property
    def window_ms(self) -> int:
        return max(1, math.ceil(self.window_seconds * 1000))


OFF = RateLimit(0, 0)


def subject_digest(subject: str) -> str:
    """What names a client in its key: no address or customer id is stored in Redis."""
    return hashlib.sha256(subject.encode()).hexdigest()[:32]


class RateLimiter:
    """The limits per client address and per customer id, in the Redis every process shares."""

    def __init__(
        self,
        client: RedisClient,
        *,
        keys: KeySpace | None = None,
        per_ip: RateLimit = OFF,
        per_customer: RateLimit = OFF,
    ) -> None:
        self.keys = keys or KeySpace()
        self.limits = {IP: per_ip, CUSTOMER: per_customer}
        self.scripts = Scripts.register(client, STANDALONE_NAMES)

    def on(self, scope: str) -> bool:
        return self.limits[scope].on

    async def admit(self, scope: str, subject: str) -> Admitted | Limited:
        """Count one request of `subject` if its limit admits it; a refusal counts nothing."""
        limit = self.limits[scope]
        if not limit.on:
            return Admitted(limit.requests)
        key = self.keys.rate_log(scope, subject_digest(subject))
        try:
            reply = await self.scripts.run("rate_limit", [key], [limit.requests, limit.window_ms])
        except RedisError as exc:
            raise storage_unavailable(exc) from exc
        argument = refused_argument(reply)
        if argument is not None:
            # {'bad_request', argument}: a limit RateLimit refuses; the client is not to blame.
            raise errors.ReservationError(
                f"the rate limit per {scope} is misconfigured: the script refused its {argument}",
                scope=scope,
                argument=argument,
            )
        return decode_rate_limit(reply)

    async def check(self, scope: str, subject: str) -> None:
        """Admit one request of `subject`, or raise RateLimited (429 with Retry-After)."""
        outcome = await self.admit(scope, subject)
        if isinstance(outcome, Limited):
            limit = self.limits[scope]
            raise errors.RateLimited(
                f"too many requests from {WHO[scope]}: at most {limit.requests} in"
                f" {limit.window_seconds:g} s; retry in {outcome.retry_after} s",
                retry_after=outcome.retry_after,
                scope=scope,
                limit=limit.requests,
                window_seconds=limit.window_seconds,
            )


def shared_rate(rate_per_second: float) -> RateLimit:
    """A rate in calls per second as the sliding log takes it: a whole number of calls in a
    window of whole ms with the same ratio (25/s: 25 in 1 s; 2.5/s: 2 in 0.8 s; 0.5/s: 1 in
    2 s), so bursts stay within about one second's share, like a leaky bucket of 1 s."""
    requests = min(max(1, math.floor(rate_per_second)), MAX_REQUESTS)
    window_ms = max(1, round(1000 * requests / rate_per_second))
    return RateLimit(requests, window_ms / 1000)


class SharedRate:
    """One rate for every process that names the same key: e.g. the Stripe account's
    (reservation/payments/gate.py). A call is admitted when fewer than the limit were admitted
    in the window before it, by Redis's clock; else it learns how long to wait."""

    def __init__(self, client: RedisClient, key: str, rate_per_second: float) -> None:
        self.key = key
        self.limit = shared_rate(rate_per_second)
        self.scripts = Scripts.register(client, STANDALONE_NAMES)

    async def admit(self) -> Admitted | Limited:
        """Admit (and count) one call, or say how long until one more fits; a refusal counts
        nothing. Redis failing raises StorageUnavailable (the caller decides what to do)."""
        args = [self.limit.requests, self.limit.window_ms]
        try:
            reply = await self.scripts.run("rate_limit", [self.key], args)
        except RedisError as exc:
            raise storage_unavailable(exc) from exc
        argument = refused_argument(reply)
        if argument is not None:  # pragma: no cover - shared_rate() builds what the script takes
            raise errors.ReservationError(f"the shared rate's {argument} was refused")
        return decode_rate_limit(reply)
