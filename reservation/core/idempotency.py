"""Idempotency-Key: the same key returns the same reservation for 24 hours, never a second hold."""

from __future__ import annotations

import hashlib
import re

from redis.exceptions import RedisError

from domain import errors
from domain.rules import KEY_REGEX, MAX_KEY
from reservation.core.keys import KeySpace
from reservation.core.redis_errors import storage_unavailable
from reservation.lua.library import RedisClient

KEY_PATTERN = re.compile(KEY_REGEX)
KEEP_SECONDS = 24 * 3600


def check_key(value: str) -> str:
    if not KEY_PATTERN.fullmatch(value):
        raise errors.InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters",
            field="Idempotency-Key",
        )
    return value


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class IdempotencyKeys:
    def __init__(self, client: RedisClient, keys: KeySpace) -> None:
        self.client = client
        self.keys = keys

    async def claim(
        self, key: str, request_fingerprint: str, candidate_id: str, customer_id: str | None = None
    ) -> str:
        """The reservation id this key stands for: `candidate_id` the first time, then the same.

        With a customer id the key is that customer's own: two customers who pick the same key
        never see each other's reservation. Without one, keys are shared by every anonymous
        client, which is why clients must make them random (a UUID).
        """
        name = self._name(key, customer_id)
        value = f"{candidate_id}|{request_fingerprint}"
        try:
            stored = await self.client.set(name, value, nx=True, ex=KEEP_SECONDS, get=True)
        except RedisError as exc:
            raise storage_unavailable(exc) from exc
        if stored is None:
            return candidate_id
        text = stored.decode() if isinstance(stored, bytes) else str(stored)
        reservation_id, _, stored_fingerprint = text.partition("|")
        if stored_fingerprint != request_fingerprint:
            raise errors.InvalidRequest(
                "this Idempotency-Key was used with a different request",
                field="Idempotency-Key",
            )
        return reservation_id

    async def known(self, key: str, customer_id: str | None = None) -> bool:
        """Whether a request has claimed this key (one read, nothing written).

        The crowd's retries of a sold-out SKU each carry a new key: asking first lets them be
        refused from the sold-out memory without storing a key for a day per refusal, while a
        retry of a request that did hold still finds its reservation.
        """
        try:
            return bool(await self.client.exists(self._name(key, customer_id)))
        except RedisError as exc:
            raise storage_unavailable(exc) from exc

    def _name(self, key: str, customer_id: str | None) -> str:
        scoped = key if customer_id is None else f"{customer_id}\x1f{key}"
        return self.keys.idempotency(hashlib.sha256(scoped.encode()).hexdigest())
