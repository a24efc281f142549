"""The reply of waitlist_line.lua: a SKU's waiting list for its operators."""

from __future__ import annotations

from typing import Any, Literal

from domain.reservations import from_epoch_ms
from domain.waitlist import LineState, Waiter
from reservation.lua._pool import text


def decode(reply: Any, sku: str) -> LineState | Literal["unknown_sku"]:
    """The list; "unknown_sku" when the pool has no counters for the SKU."""
    if text(reply[0]) == "unknown_sku":
        return "unknown_sku"
    _, closed, waiting, offers, *entries = reply
    line = tuple(
        Waiter(text(entries[i]), int(entries[i + 1]), from_epoch_ms(int(entries[i + 2])))
        for i in range(0, len(entries), 3)
    )
    return LineState(sku, text(closed) == "1", int(waiting), int(offers), line)
