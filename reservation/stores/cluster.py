"""The Redis Cluster client of the service: redis-py's, routing FCALL by its declared keys."""

from __future__ import annotations

from typing import Any

from redis.asyncio import RedisCluster

SCRIPT_CALLS = ("FCALL", "FCALL_RO")


class Cluster(RedisCluster):
    """redis-py's RedisCluster, which finds the keys of an FCALL by asking a node (COMMAND
    GETKEYS: a round trip before every call, FCALL's keys being "movable"), but those of an
    EVALSHA from its numkeys argument. This finds FCALL's the same way: its keys are the
    `numkeys` arguments after the function's name, and every key of a call shares one slot."""

    async def _determine_slot(self, command: str, *args: Any) -> int:
        if command.upper() in SCRIPT_CALLS and len(args) >= 2:
            keys = args[2 : 2 + int(args[1])]
            slots = {self.keyslot(key) for key in keys}
            if len(slots) == 1:
                return slots.pop()
        return await super()._determine_slot(command, *args)
