"""The history as the search walks it: a doubly linked list of call and return entries in
time order, from which a linearized operation is lifted (its call and its return) and put back
when the search backtracks, each in constant time."""

from __future__ import annotations

from collections.abc import Sequence


class Entries:
    """Call and return entries, 1..2n, between a head (0) and a tail (2n + 1)."""

    def __init__(self, calls: Sequence[float], returns: Sequence[float]) -> None:
        n = len(calls)
        times = [(calls[k], 0, k) for k in range(n)] + [(returns[k], 1, k) for k in range(n)]
        times.sort()
        self.op = [-1] * (2 * n + 2)
        self.is_call = [False] * (2 * n + 2)
        self.match = [0] * (2 * n + 2)
        call_entry = [0] * n
        for position, (_, kind, k) in enumerate(times, start=1):
            self.op[position], self.is_call[position] = k, kind == 0
            if kind == 0:
                call_entry[k] = position
            else:
                self.match[call_entry[k]] = position
        self.next = [*range(1, 2 * n + 2), 2 * n + 1]
        self.prev = [0, *range(0, 2 * n + 1)]
        self.tail = 2 * n + 1

    def lift(self, entry: int) -> None:
        nxt, prv = self.next, self.prev
        for e in (entry, self.match[entry]):
            nxt[prv[e]] = nxt[e]
            prv[nxt[e]] = prv[e]

    def unlift(self, entry: int) -> None:
        nxt, prv = self.next, self.prev
        for e in (self.match[entry], entry):
            nxt[prv[e]] = e
            prv[nxt[e]] = e

    def calls_before(self, entry: int) -> list[int]:
        """The operations whose call entries remain before `entry`."""
        found, e = [], self.next[0]
        while e != entry and e != self.tail:
            if self.is_call[e]:
                found.append(self.op[e])
            e = self.next[e]
        return found
