"""Calls of the pool scripts: the keys each takes, and the two ways a call fails before its
reply means anything (Redis did not answer; the script refused an argument)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from domain import errors
from reservation.core.pools import PoolDirectory
from reservation.core.readcache import ReadCache
from reservation.core.redis_errors import storage_unavailable
from reservation.core.reservation_ids import pool_of_reservation
from reservation.lua._pool import refused_argument
from reservation.lua.library import Scripts

# Scripts that change no product view (they read, and reclaim lapsed holds, which a reader's
# answer already reflects; the queue's write only its room), so the product reads this process
# remembers stand.
READ_SCRIPTS = frozenset({"snapshot", "product", "lookup", "queue", "room"})
# Scripts that sell, and so read the pool's fence (KEYS[8]); the others take 7 keys.
FENCED_SCRIPTS = frozenset({"commit", "restock"})


class PoolCalls:
    """Runs a pool script on a pool's keys (and a reservation's record), with ARGV[1] the
    reclaim batch; a write forgets the product reads this process remembers."""

    def __init__(
        self, scripts: Scripts, pools: PoolDirectory, reads: ReadCache[bytes], reclaim_batch: int
    ) -> None:
        self.scripts = scripts
        self.pools = pools
        self.reads = reads
        self._batch_arg = str(reclaim_batch).encode()

    async def run(
        self,
        pool: str,
        script: str,
        args: Sequence[str | int | bytes],
        reservation_id: str | None = None,
        extra_keys: Sequence[str] = (),
    ) -> Any:
        """The script's reply; StorageUnavailable when Redis fails, ScriptFailed when the
        script raised an error (a bug, from Scripts.run), InvalidRequest when the script
        refused an argument. `extra_keys` follow the pool's keys and the record's."""
        keys = self.pools.keys_of(pool)
        key_list: Sequence[str] = keys.shared
        if script not in READ_SCRIPTS:
            self.reads.forget()
        if reservation_id is not None:
            key_list = (*key_list, keys.record(reservation_id))
            if script in FENCED_SCRIPTS:
                key_list = (*key_list, keys.fence)
        if extra_keys:
            key_list = (*key_list, *extra_keys)
        try:
            reply = await self.scripts.run(script, key_list, [self._batch_arg, *args])
        except RedisError as exc:
            raise storage_unavailable(exc) from exc
        argument = refused_argument(reply)
        if argument is not None:
            # An argument the script cannot use (it touched nothing): the checks before the
            # call let nothing like it through, so this is a caller's mistake, said as such.
            raise errors.InvalidRequest(
                f"refused by the {script} script: {argument}", argument=argument
            )
        return reply

    async def run_for(
        self, reservation_id: str, script: str, args: Sequence[str | int | bytes]
    ) -> tuple[Any, str]:
        """A script about one reservation, in the pool its id names: its reply, and the pool."""
        pool = pool_of_reservation(reservation_id)
        reply = await self.run(pool, script, [reservation_id, *args], reservation_id)
        return reply, pool
