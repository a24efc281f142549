"""The outbox in Redis: each pool's list of offers made and lapsed (the waiting-list scripts
append to it), read and trimmed by the relay; and the lease that keeps the relay and the shop's
deliveries to one process at a time.

The lease is redis-py's Lock (SET NX PX, renewed and released by token-checked scripts): it
lapses on its own `seconds` after its holder stopped renewing it, a SIGKILLed process included.
"""

from __future__ import annotations

from contextlib import suppress

from redis.exceptions import LockError

from reservation.core.keys import KeySpace
from reservation.core.redis_errors import storage_errors
from reservation.lua.library import RedisClient, Scripts
from reservation.lua.outbox_trim import decode as decode_trim


class OutboxList:
    """The pools' outbox lists: the oldest entries read, and dropped once they are moved."""

    def __init__(self, client: RedisClient, keys: KeySpace) -> None:
        self.client = client
        self.keys = keys
        self.scripts = Scripts.register(client, ("outbox_trim",))

    async def oldest(self, pool: str, count: int) -> list[bytes]:
        """The first `count` entries of the pool's list, as their raw text."""
        async with storage_errors():
            found: list[bytes | str] = await self.client.lrange(
                self.keys.pool(pool).outbox, 0, count - 1
            )
        return [entry if isinstance(entry, bytes) else str(entry).encode() for entry in found]

    async def drop_oldest(self, pool: str, entries: list[bytes]) -> bool:
        """Drop `entries`, the list's first ones as `oldest` read them; False (nothing dropped)
        when the list no longer starts with them: another relay dropped them already."""
        if not entries:
            return True
        key = self.keys.pool(pool).outbox
        async with storage_errors():
            reply = await self.scripts.run("outbox_trim", [key], [len(entries), entries[0]])
        return decode_trim(reply)

    async def length(self, pool: str) -> int:
        async with storage_errors():
            return int(await self.client.llen(self.keys.pool(pool).outbox))


class OutboxLease:
    """One process at a time relays and delivers: it holds this lease and renews it."""

    def __init__(self, client: RedisClient, keys: KeySpace, seconds: float) -> None:
        self.seconds = seconds
        self._lock = client.lock(
            keys.outbox_lease, timeout=seconds, blocking=False, thread_local=False
        )
        self._held = False

    async def hold(self) -> bool:
        """Take the lease, or renew it (its full time again) when this process holds it; False
        when another process holds it (or this one's lapsed and another took it)."""
        async with storage_errors():
            if self._held:
                try:
                    await self._lock.reacquire()
                    return True
                except LockError:
                    self._held = False  # lapsed: try to take it afresh
            self._held = bool(await self._lock.acquire(blocking=False))
        return self._held

    async def give_up(self) -> None:
        """Release the lease (at shutdown), so another process takes over at once."""
        if not self._held:
            return
        self._held = False
        # A lease that lapsed meanwhile has nothing to release.
        async with storage_errors():
            with suppress(LockError):
                await self._lock.release()
