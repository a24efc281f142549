"""A short memory of sold-out SKUs, so the crowd's refusals cost no Redis round trip.

Most of a flash-sale crowd arrives after the stock is gone. Once Redis has answered "0 left"
for a SKU, this process answers the same for `seconds` without asking again. Then one request
asks Redis again while the others are still refused, for one more `seconds` at most: its
answer remembers the SKU again, or, when units came back and it held them, forgets it. A crowd
of any size thus asks Redis about a sold-out SKU once per `seconds`, not once per request in
flight when the memory lapses. It can only refuse, never hold, so it cannot oversell; units
that come back (a release, a lapsed hold) are offered again within two `seconds`, and at once
when this process released them.

Two `seconds` from when Redis said so, whatever happened since: a refusal never rests on an
older answer. The re-check's extra period is counted from that answer, not from the request
that re-checks, so neither a SKU this process was not asked about for a while (its next
request re-arms the memory) nor a re-check whose answer is slow or about another line of its
cart stretches it; past it the SKU is forgotten and every request asks Redis until one
answers. (The linearizability checks, loadtests/linearizability, found refusals 0.35 s stale
with the memory at 0.1 s before this bound.)
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
        self._heard: dict[str, float] = {}  # when Redis's "0 left" was remembered

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
            # Lapsed: this request asks Redis; the next ones are refused until it answers, but
            # never on an answer more than two periods old: then every request asks.
            stale = self._heard[line.sku] + 2 * self.seconds
            if now < stale:
                until[line.sku] = min(now + self.seconds, stale)
            else:
                del until[line.sku], self._heard[line.sku]
        return None

    def remember(self, refusal: OutOfStock) -> None:
        # A SKU whose sale ends is not remembered: past the end Redis answers not_on_sale.
        if self.seconds and refusal.available == 0 and not refusal.windowed:
            now = self.clock()
            self._until[refusal.sku] = now + self.seconds
            self._heard[refusal.sku] = now

    def forget(self, skus: Iterable[str]) -> None:
        if not self._until:
            return
        for sku in skus:
            self._until.pop(sku, None)
            self._heard.pop(sku, None)
