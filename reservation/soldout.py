"""A short memory of sold-out SKUs, so the crowd's refusals cost no Redis round trip.

Most of a flash-sale crowd arrives after the stock is gone. Once Redis has answered "0 left"
for a SKU, this process answers the same for `seconds` without asking again. It can only
refuse, never hold, so it cannot oversell; units that come back (a release, a lapsed hold)
are offered again at most `seconds` later, and at once when this process released them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from reservation.models import CartLine
from reservation.outcomes import OutOfStock


class SoldOutMemory:
    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self.seconds = seconds
        self._until: dict[str, float] = {}

    def refusal(self, lines: Iterable[CartLine]) -> OutOfStock | None:
        """The refusal Redis gave a moment ago for a line of this cart, if any."""
        if not self._until:
            return None
        now = time.monotonic()
        for line in lines:
            until = self._until.get(line.sku)
            if until is None:
                continue
            if until > now:
                return OutOfStock(line.sku, line.quantity, 0)
            del self._until[line.sku]
        return None

    def remember(self, refusal: OutOfStock) -> None:
        if self.seconds and refusal.available == 0:
            self._until[refusal.sku] = time.monotonic() + self.seconds

    def forget(self, skus: Iterable[str]) -> None:
        for sku in skus:
            self._until.pop(sku, None)
