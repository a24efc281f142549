"""The Lua scripts as one Redis Functions library: loaded once per server, reloaded when missing.

Every script file becomes a function of one library (`FUNCTION LOAD`, then `FCALL`). The pool
scripts share `_pool.lua`, whose helpers the library defines once when it loads, instead of
once per call as a prelude of each EVALSHA script would. The library and its functions are
named after a digest of the whole text, so two versions of the service side by side (a rolling
deploy) each call their own code, never the other's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ResponseError

from domain import errors

RedisClient = Redis | RedisCluster
# The pool scripts: each runs on the keys of one pool, with the shared helpers of _pool.lua.
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
    "queue",
    "room",
    "waitlist",
    "waitlist_line",
)
# Scripts of their own, that use none of the helpers (the rate limiter: one key, no pool; the
# outbox relay's trim: one list).
STANDALONE_NAMES = ("rate_limit", "outbox_trim")
POOL_PRELUDE = "_pool"
VERSION_PLACEHOLDER = "{version}"
# What Redis (and fakeredis) answer to FCALL of a function no library defines.
MISSING_FUNCTION = "Function not found"


def _read(name: str) -> str:
    return files("reservation").joinpath("lua").joinpath(f"{name}.lua").read_text("utf-8")


def _function(name: str) -> str:
    """One script file as a function of the library, registered under a versioned name."""
    if name in STANDALONE_NAMES:
        start = "  start(keys, args)\n"
    else:
        start = "  local refused = begin(keys, args)\n  if refused then return refused end\n"
    return (
        f"local function script_{name}(keys, args)\n{start}{_read(name)}\nend\n"
        f"redis.register_function('rsv_{name}_{VERSION_PLACEHOLDER}', script_{name})\n"
    )


@dataclass(frozen=True, slots=True)
class Library:
    """The library's text and the name of each script's function in it."""

    code: str
    version: str

    def function(self, name: str) -> str:
        return f"rsv_{name}_{self.version}"


@cache
def library() -> Library:
    body = "\n".join([_read(POOL_PRELUDE), *map(_function, (*SCRIPT_NAMES, *STANDALONE_NAMES))])
    version = hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()[:16]
    code = f"#!lua name=rsv_{version}\n" + body.replace(VERSION_PLACEHOLDER, version)
    return Library(code, version)


# Error codes (the reply's first word) of a Redis that cannot run the call now: an outage
# or a failover, for which a retry is the answer (StorageUnavailable), not a script's bug.
# redis-py raises most of them as subclasses of ResponseError; these are the ones it does
# not, or did not before 8 (whose messages start with the code).
OUTAGE_CODES = frozenset(
    {"BUSY", "MISCONF", "NOREPLICAS", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN"}
)


def is_missing_function(exc: ResponseError) -> bool:
    return MISSING_FUNCTION in str(exc)


def is_script_error(exc: ResponseError) -> bool:
    """Whether Redis ran the function and it raised an error (a Lua error, a command called
    wrongly, an error reply it returned): a plain ResponseError, not one redis-py names as an
    outage (OOM, READONLY, cluster moves and failovers), nor "Function not found"."""
    if type(exc) is not ResponseError or is_missing_function(exc):
        return False
    code = getattr(exc, "status_code", None) or str(exc).split(" ", 1)[0]
    return code not in OUTAGE_CODES


@dataclass(frozen=True, slots=True)
class Scripts:
    """The library's functions, called on one client.

    A server without the library (a new or restarted Redis that keeps nothing, FUNCTION
    FLUSH, a cluster node that joined) answers "Function not found": the library is loaded
    again (on every primary of a cluster) and the call sent once more, like redis-py does for
    EVALSHA and NOSCRIPT. Loading replaces a library of the same name, whose text is the same.
    """

    client: RedisClient
    functions: dict[str, str]
    code: str

    @classmethod
    def register(
        cls, client: RedisClient, names: Sequence[str] = (*SCRIPT_NAMES, *STANDALONE_NAMES)
    ) -> Scripts:
        lib = library()
        return cls(client, {name: lib.function(name) for name in names}, lib.code)

    async def load(self) -> None:
        await self.client.function_load(self.code, replace=True)

    async def run(self, name: str, keys: Sequence[str], args: Sequence[str | int | bytes]) -> Any:
        """The reply of script `name`. ScriptFailed when the script raised an error (a bug:
        500, not a retry); any other Redis failure leaves as redis-py raised it."""
        function = self.functions[name]
        try:
            try:
                return await self.client.fcall(function, len(keys), *keys, *args)
            except ResponseError as exc:
                if not is_missing_function(exc):
                    raise
            await self.load()
            return await self.client.fcall(function, len(keys), *keys, *args)
        except ResponseError as exc:
            if is_script_error(exc):
                raise errors.ScriptFailed(name, str(exc)) from exc
            raise
