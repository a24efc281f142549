"""The reply of set_stock.lua as a typed outcome."""

from __future__ import annotations

from typing import Any

from domain.outcomes import BelowCommitted
from domain.reservations import StockLevel
from reservation.lua._pool import NoCounters, stock_level, text


def decode(reply: Any, sku: str, pool: str) -> StockLevel | BelowCommitted | NoCounters:
    """The SKU's level as set; refused below reserved + sold; NoCounters when the SKU was to
    have counters already and has none."""
    outcome = text(reply[0])
    if outcome == "missing":
        return NoCounters(sku)
    if outcome == "below_committed":
        _, reserved, sold = reply
        return BelowCommitted(sku, int(reserved), int(sold))
    _, *counters, on_sale = reply
    return stock_level(sku, pool, counters, on_sale)
