"""The reply of rate_limit.lua as a typed outcome."""

from __future__ import annotations

from typing import Any

from domain.outcomes import Admitted, Limited


def decode(reply: Any) -> Admitted | Limited:
    """{1, requests left} admitted, {0, ms to wait} limited. A {'bad_request', argument} is
    the caller's to check first (reservation.lua._pool.refused_argument)."""
    admitted, value = reply
    return Admitted(int(value)) if admitted else Limited(int(value))
