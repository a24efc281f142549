"""The reply of outbox_trim.lua."""

from __future__ import annotations

from typing import Any


def decode(reply: Any) -> bool:
    """True when the entries were dropped; False when another relay had dropped them."""
    return int(reply) == 1
