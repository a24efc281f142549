"""The reply of outbox_trim.lua."""

from __future__ import annotations

from typing import Any

from reservation.lua._pool import refused_argument


def decode(reply: Any) -> bool:
    """True when the entries were dropped; False when another relay had dropped them. An
    argument the script refused is a caller's mistake (ValueError)."""
    argument = refused_argument(reply)
    if argument is not None:
        raise ValueError(f"outbox_trim refused its {argument}")
    return int(reply) == 1
