"""The Lua scripts: read from the package once, registered on a client, NOSCRIPT-proof."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.commands.core import AsyncScript

RedisClient = Redis | RedisCluster
# The pool scripts: each runs on the keys of one pool, after the shared prelude.
SCRIPT_NAMES = (
    "reserve",
    "release",
    "commit",
    "extend",
    "set_stock",
    "snapshot",
    "product",
    "reclaim",
    "lookup",
    "restore",
    "restock",
    "settle_paid",
)
# Scripts of their own, without the prelude (the rate limiter: one key, no pool).
STANDALONE_NAMES = ("rate_limit",)
POOL_PRELUDE = "_pool"


@cache
def source(name: str) -> str:
    """A script's full text: for a pool script the shared prelude, then the script's own file."""
    lua = files("reservation").joinpath("lua")
    own = lua.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    if name in STANDALONE_NAMES:
        return own
    return lua.joinpath(f"{POOL_PRELUDE}.lua").read_text(encoding="utf-8") + "\n" + own


@dataclass(frozen=True, slots=True)
class Scripts:
    """The scripts registered on one client.

    redis-py's AsyncScript runs EVALSHA and, on NOSCRIPT (after SCRIPT FLUSH, a failover or
    a new cluster node), loads the script again and retries once.
    """

    by_name: dict[str, AsyncScript]

    @classmethod
    def register(cls, client: RedisClient, names: Sequence[str] = SCRIPT_NAMES) -> Scripts:
        return cls({name: client.register_script(source(name)) for name in names})

    async def run(self, name: str, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        return await self.by_name[name](keys=keys, args=args)
