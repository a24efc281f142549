"""The public keys of a JWKS URL (RESERVATION_CUSTOMER_JWKS_URL), kept in memory by `kid`.

A request never waits on the JWKS endpoint while its keys are known: they are fetched the first
time a token needs them, again once they are older than `LIFESPAN_SECONDS`, and again when a
token names a `kid` they lack (the shop rotated its key), but such a forced refresh happens at
most once per `COOLDOWN_SECONDS`, so tokens with invented `kid`s cannot make the service fetch
on their every request. Fetches run one at a time, in a thread (PyJWKClient fetches with
urllib); while one runs, requests that need keys wait for it. A refresh that fails keeps the keys
known before it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWTError

from domain import errors

logger = logging.getLogger("reservation.customers")

LIFESPAN_SECONDS = 300.0
COOLDOWN_SECONDS = 10.0
FETCH_TIMEOUT_SECONDS = 5.0


class JwksKeys:
    """The signing keys of one JWKS URL, by `kid`."""

    def __init__(
        self,
        url: str,
        *,
        lifespan: float = LIFESPAN_SECONDS,
        cooldown: float = COOLDOWN_SECONDS,
    ) -> None:
        # No cache of PyJWKClient's own: this one serves known keys without a thread or I/O.
        self.client = PyJWKClient(url, cache_jwk_set=False, timeout=FETCH_TIMEOUT_SECONDS)
        self.lifespan = lifespan
        self.cooldown = cooldown
        self.keys: dict[str, PyJWK] = {}
        self.fetched_at: float | None = None  # monotonic time of the last fetch tried
        self.forced_at: float | None = None  # of the last refresh an unknown `kid` forced
        self.fetches = 0  # fetches that answered (the tests count them)
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> PyJWK:
        """The key `kid` names; InvalidCustomerToken if the JWKS has none (after a refresh,
        unless one was forced within the cooldown), StorageUnavailable while no key could
        be fetched."""
        found = self.keys.get(kid)
        if found is not None and not self._stale():
            return found
        async with self._lock:
            if kid not in self.keys or self._stale():
                await self._refresh(forced=kid not in self.keys and self.fetched_at is not None)
        if not self.keys:
            raise errors.StorageUnavailable(
                "the keys of customer tokens (RESERVATION_CUSTOMER_JWKS_URL) could not be fetched"
            )
        found = self.keys.get(kid)
        if found is None:
            raise errors.InvalidCustomerToken("the token's key (kid) is not in the JWKS")
        return found

    def _stale(self) -> bool:
        return self.fetched_at is None or time.monotonic() - self.fetched_at > self.lifespan

    async def _refresh(self, *, forced: bool) -> None:
        now = time.monotonic()
        if forced and not self._stale():
            if self.forced_at is not None and now - self.forced_at < self.cooldown:
                return  # an unknown kid again so soon: no fetch
            self.forced_at = now
        self.fetched_at = now
        try:
            signing = await asyncio.to_thread(self.client.get_signing_keys)
        except PyJWTError as exc:  # unreachable, not JSON, no usable key
            logger.warning("the JWKS of customer tokens could not be fetched: %s", exc)
            return
        self.fetches += 1
        self.keys = {key.key_id: key for key in signing if key.key_id}
