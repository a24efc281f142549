"""Webhook deliveries already received, so the same signed bytes are taken once.

Stripe signs every delivery attempt afresh (a new timestamp, so a new signature): a retry or a
duplicate delivery of an event never repeats an earlier attempt's `Stripe-Signature`. The same
timestamp and body (so the same signature) twice is someone sending captured bytes again,
which the timestamp tolerance alone allows for 300 s. Each delivery is remembered in Redis
until its timestamp is out of the tolerance; from then on the signature check refuses it.
"""

from __future__ import annotations

import math
import time

from redis.exceptions import RedisError

from reservation.core.keys import KeySpace
from reservation.core.redis_errors import storage_unavailable
from reservation.lua.library import RedisClient

# Kept this much longer than the tolerance strictly needs: the clocks of the service's
# processes and of Redis need not agree to the second.
MARGIN_SECONDS = 60


class SeenDeliveries:
    """Remembers the deliveries a webhook endpoint has taken (one key each, SET NX)."""

    def __init__(self, client: RedisClient, keys: KeySpace) -> None:
        self.client = client
        self.keys = keys

    async def first(self, timestamp: int, body_digest: str, *, accepted_until: float) -> bool:
        """True the first time this delivery (its signed timestamp and the digest of its body)
        is seen; False for a replay of it.

        `accepted_until` is when the timestamp check will refuse the delivery by itself
        (epoch seconds, this process's clock): the key lives that long, plus a margin.
        StorageUnavailable if Redis does not answer (the caller answers 503; Stripe retries).
        """
        keep = max(0, math.ceil(accepted_until - time.time())) + MARGIN_SECONDS
        name = self.keys.webhook_delivery(timestamp, body_digest)
        try:
            return bool(await self.client.set(name, "1", nx=True, ex=keep))
        except RedisError as exc:
            raise storage_unavailable(exc) from exc
