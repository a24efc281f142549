"""The reply of reclaim.lua: one sweeper batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ReclaimBatch:
    reclaimed: int  # lapsed holds given back by this call
    waiting: int  # lapsed holds still in the pool (another batch is due when > 0)


def decode(reply: Any) -> ReclaimBatch:
    """{reclaimed, waiting} as a batch's count."""
    reclaimed, waiting = reply
    return ReclaimBatch(int(reclaimed), int(waiting))
