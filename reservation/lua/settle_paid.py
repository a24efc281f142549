"""The reply of settle_paid.lua as a typed outcome."""

from __future__ import annotations

from typing import Any

from domain.outcomes import SETTLED_BY_SCRIPT, SettleOutcome
from reservation.lua._pool import text


def decode(reply: Any) -> SettleOutcome:
    """The record settled (it changed), unchanged (committed already) or oversold (its
    payment was refused for good)."""
    word = text(reply[0])
    for known in SETTLED_BY_SCRIPT:
        if word == known:
            return known
    raise ValueError(f"settle_paid answered {word!r}")
