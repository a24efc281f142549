"""The reply of release.lua as a typed outcome."""

from __future__ import annotations

from typing import Any

from domain.outcomes import Released, ReleaseOutcome, ReleaseRefused
from reservation.lua._pool import outcome, reservation


def decode(reply: Any, reservation_id: str, pool: str) -> ReleaseOutcome:
    """Released (`changed` when units went back), or refused for a committed reservation."""
    word = outcome(reply, reservation_id, pool)
    released = reservation(reply, reservation_id, pool)
    if word == "already_committed":
        return ReleaseRefused(released)
    return Released(released, changed=word == "released")
