"""The reply of commit.lua as a typed outcome."""

from __future__ import annotations

from typing import Any

from domain.outcomes import CommitOutcome, Committed, CommittedLate, Oversold
from reservation.lua._pool import NoCounters, outcome, reservation, text


def decode(reply: Any, reservation_id: str, pool: str) -> CommitOutcome | NoCounters:
    """Committed (in time, or late on free stock), oversold, or NoCounters for a paid cart's
    SKU that Redis has no counters for."""
    word = outcome(reply, reservation_id, pool)
    if word == "oversold":
        _, sku, requested, available = reply
        return Oversold(reservation_id, text(sku), int(requested), int(available))
    if word == "unknown_stock":
        return NoCounters(text(reply[1]))
    committed = reservation(reply, reservation_id, pool)
    if word == "committed_late" or (word == "already_committed" and committed.committed_late):
        return CommittedLate(committed)
    return Committed(committed, repeated=word == "already_committed")
