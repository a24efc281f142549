"""The reply of restore.lua: a SKU's counters before and after reconcile rebuilt them."""

from __future__ import annotations

from typing import Any

from domain.reservations import StockLevel
from reservation.lua._pool import stock_level


def decode(reply: Any, sku: str, pool: str) -> tuple[StockLevel | None, StockLevel]:
    """{total, reserved, sold, limit before (total -1: the SKU was missing), the same after,
    on_sale after}."""
    total, reserved, sold, limit, *after, on_sale = reply
    before = None if int(total) < 0 else stock_level(sku, pool, (total, reserved, sold, limit))
    return before, stock_level(sku, pool, after, on_sale)
