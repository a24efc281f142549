"""The scripts of another git revision, called as they ran then (EVALSHA of the shared prelude
followed by the script, KEYS[5] the fence), so script_costs.py measures them beside today's."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace

ROOT = Path(__file__).resolve().parent.parent


class BaselineScripts:
    """The scripts of a git revision, called as they were then (EVALSHA, prelude + script)."""

    def __init__(self, client: Redis, revision: str) -> None:
        self.client = client
        prelude = git_show(revision, "reservation/lua/_pool.lua")
        self.sources = {
            name: prelude + "\n" + git_show(revision, f"reservation/lua/{name}.lua")
            for name in ("reserve", "commit", "release", "set_stock")
        }
        self.scripts = {name: client.register_script(text) for name, text in self.sources.items()}

    async def run(self, name: str, keys: Sequence[str], args: Sequence[str | int | bytes]) -> Any:
        if len(keys) == 4:
            keys = [*keys, keys[0].rsplit(":", 1)[0] + ":fence"]
        reply = await self.scripts[name](keys=keys, args=args)
        if name == "reserve" and reply[0] == b"held":
            # Then a new hold answered its whole record; today only its two times.
            return [reply[0], reply[4], reply[5]]
        return reply


def git_show(revision: str, path: str) -> str:
    return subprocess.run(
        ["git", "show", f"{revision}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def inventory_for(client: Redis, space: KeySpace, version: str) -> Inventory:
    inventory = Inventory(client, keys=space)
    if version != "now":
        inventory.calls.scripts = BaselineScripts(client, version)  # type: ignore[assignment]
    return inventory
