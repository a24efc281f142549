"""The reply of set_stock.lua as a typed outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain import errors
from domain.reservations import StockLevel
from reservation.lua._pool import NoCounters, stock_level, text


@dataclass(frozen=True, slots=True)
class BelowCommitted:
    """Refused: the new total is below what is held plus sold (nothing changed)."""

    sku: str
    reserved: int
    sold: int

    def error(self) -> errors.StockBelowCommitted:
        return errors.StockBelowCommitted(
            f"stock of {self.sku} cannot go below reserved + sold",
            sku=self.sku,
            reserved=self.reserved,
            sold=self.sold,
        )


def decode(reply: Any, sku: str, pool: str) -> StockLevel | BelowCommitted | NoCounters:
    """The SKU's level as set; refused below reserved + sold; NoCounters when the SKU was to
    have counters already and has none."""
    outcome = text(reply[0])
    if outcome == "missing":
        return NoCounters(sku)
    if outcome == "below_committed":
        _, reserved, sold = reply
        return BelowCommitted(sku, int(reserved), int(sold))
    _, *counters = reply
    return stock_level(sku, pool, counters)
