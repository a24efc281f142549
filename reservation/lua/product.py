"""The reply of product.lua: a SKU's product view as JSON text."""

from __future__ import annotations

from typing import Any


def decode(reply: Any) -> bytes | None:
    """The JSON text; None (the script's false) when the SKU has no counters or no catalog
    entry in the pool."""
    return None if reply is None else bytes(reply)
