"""A short memory of sold-out SKUs, so the crowd's refusals cost no Redis round trip.

Most of a flash-sale crowd arrives after the stock is gone. Once Redis has answered "0 left"
for a SKU, this process answers the same for `seconds` without asking again. Then one request
asks Redis again while the others are still refused, for one more `seconds` at most: its
answer remembers the SKU again, or, when units came back and it held them, forgets it. A crowd
of any size thus asks Redis about a sold-out SKU once per `seconds`, not once per request in
flight when the memory lapses. It can only refuse, never hold, so it cannot oversell; units
that come back (a release, a lapsed hold) are offered again within two `seconds`, and at once
when this process released them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from domain.outcomes import OutOfStock
from domain.reservations import CartLine


class SoldOutMemory:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self.seconds = seconds
        self.clock = clock  # seconds, monotonic (a test moves its own)
        self._until: dict[str, float] = {}

    def refusal(self, lines: Iterable[CartLine]) -> OutOfStock | None:
        """The refusal Redis gave a moment ago for a line of this cart, if any. None for the
        request that is to ask Redis again (the others are refused meanwhile)."""
        if not self._until:
            return None
        now = self.clock()
        until = self._until
        for line in lines:
            lapses = until.get(line.sku)
            if lapses is None:
                continue
            if lapses > now:
                return OutOfStock(line.sku, line.quantity, 0)
            # Lapsed: this request asks Redis; the next ones are refused until it answers.
            until[line.sku] = now + self.seconds
        return None

    def remember(self, refusal: OutOfStock) -> None:
        # A SKU whose sale ends is not remembered: past the end Redis answers not_on_sale.
        if self.seconds and refusal.available == 0 and not refusal.windowed:
            self._until[refusal.sku] = self.clock() + self.seconds

    def forget(self, skus: Iterable[str]) -> None:
        if not self._until:
            return
        for sku in skus:
            self._until.pop(sku, None)
