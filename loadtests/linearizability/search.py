"""The Wing-Gong-Lowe search of one partition: an order of the operations, consistent with
real time, in which the sequential model gives every answer that was given.

The history becomes a doubly linked list of call and return entries in time order (a call
before a return at the same instant: such operations overlap). The search walks it: at a
call it tries to take that operation's effect next ("linearize" it: lift its call and return
from the list and start again from the head); at a return whose operation is not linearized
yet it backtracks, undoing the last choice and trying the next. A cache of (linearized set,
state) pairs (Lowe's memoisation: the set as a Python int, one bit per operation) cuts every
configuration reached before by another order. Operations whose answer the model may give in
several ways (an unknown checkout: a session made, or the hold released) keep the index of the
choice on the stack.

Operations whose outcome is unknown have their return at +infinity: they never force a
backtrack, so leaving one out is simply never linearizing it, and the search succeeds once
every answered operation is linearized. At each configuration the answered operations are
tried first, and the unknown ones only when none of those can come next (a second pass over
the same entries): an unknown operation is taken when an answer needs it, not as soon as it
could have happened, which would be wrong as often as right. One whose effect would change
nothing from a state is not tried there (leaving it out is the same configuration with fewer
bits). Unknown reads are dropped before the search. Failed operations (`fail`) are not in
the history searched.

A time budget bounds each partition: past it the verdict is `unknown`, never a guess.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from loadtests.linearizability.history import Operation, Outcome
from loadtests.linearizability.model import PoolModel
from loadtests.linearizability.staleness import is_pure
from loadtests.linearizability.state import State

READS = ("read_product", "read_reservation")
KEPT_STATES = 3  # distinct states kept for the explanation at the deepest point
LAST = 6  # operations linearized last, kept for the explanation


@dataclass(frozen=True, slots=True)
class Stuck:
    """The deepest point the search reached: `depth` answers linearized (`last` the latest
    of them, in the order taken), the first return entry whose
    operation (`blocking`) no order could reach, with the operations still pending before it,
    and the states the search stood in there."""

    depth: int
    last: tuple[int, ...]  # indexes into the searched operations
    blocking: int
    pending: tuple[int, ...]  # not linearized, invoked (window included) before blocking returned
    states: tuple[State, ...]


@dataclass(frozen=True, slots=True)
class Search:
    verdict: str  # "ok", "fail" or "unknown" (budget spent)
    operations: tuple[Operation, ...]  # those searched, in call order
    calls: tuple[float, ...]  # each one's call time (invocation less its stale window)
    explored: int  # configurations cached
    stuck: Stuck | None


def searched(operations: Sequence[Operation]) -> list[Operation]:
    """What the search needs: answered operations, and unknown ones that may change state."""
    return [
        op
        for op in operations
        if op.outcome is Outcome.OK or (op.outcome is Outcome.UNKNOWN and op.kind not in READS)
    ]


class _List:
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


def search(
    model: PoolModel, operations: Sequence[Operation], calls: Sequence[float], budget: float
) -> Search:
    """Linearize `operations` (call times given: invocation less the stale window)."""
    ops = tuple(operations)
    known = [op.outcome is Outcome.OK for op in ops]
    pure = [is_pure(op) for op in ops]
    returns = [
        op.completed if op.completed is not None and ok else math.inf
        for op, ok in zip(ops, known, strict=True)
    ]
    entries = _List(calls, returns)
    deadline = time.monotonic() + budget
    cache: set[tuple[int, State]] = set()
    # (call entry, state before, choice taken, the choices, whether it was forced, phase)
    stack: list[tuple[int, State, int, tuple[State, ...], bool, int]] = []
    state, linearized, depth = model.initial(), 0, 0
    remaining = sum(known)
    best: list[Stuck] = []
    entry, phase = entries.next[0], 0
    resume: tuple[tuple[State, ...], int] | None = None
    steps = 0
    while remaining:
        steps += 1
        if not steps & 255 and time.monotonic() > deadline:
            return Search("unknown", ops, tuple(calls), len(cache), _last(best))
        if entries.is_call[entry]:
            k = entries.op[entry]
            if known[k] == phase:  # answered ones in phase 0, unknown ones in phase 1
                entry = entries.next[entry]
                continue
            if resume is None:
                choices, first = model.successors(state, ops[k]), 0
            else:
                (choices, first), resume = resume, None
            # An answer that never changes anything, taken as soon as it can be, is never a
            # worse choice than taking it later: no alternative of it is searched.
            forced = pure[k] and len(choices) == 1
            bit = 1 << k
            moved = False
            for choice in range(first, len(choices)):
                after = choices[choice]
                if (linearized | bit, after) in cache:
                    continue
                cache.add((linearized | bit, after))
                stack.append((entry, state, choice, choices, forced, phase))
                state, linearized = after, linearized | bit
                entries.lift(entry)
                remaining -= known[k]
                depth += known[k]
                entry, phase, moved = entries.next[0], 0, True
                break
            if moved:
                continue
            if not forced:
                entry = entries.next[entry]
                continue
            # Taking it now was searched already, and failed: so does this configuration.
        elif phase == 0:
            entry, phase = entries.next[0], 1  # now the unknown ones that may have happened
            continue
        else:
            _note_stuck(best, entries, entry, depth, stack, state)
        while True:  # back to the last choice that has alternatives
            if not stack:
                return Search("fail", ops, tuple(calls), len(cache), _last(best))
            entry, state, choice, choices, forced, phase = stack.pop()
            k = entries.op[entry]
            linearized &= ~(1 << k)
            entries.unlift(entry)
            remaining += known[k]
            depth -= known[k]
            if not forced:
                break
        resume = (choices, choice + 1)
    return Search("ok", ops, tuple(calls), len(cache), None)


def _note_stuck(
    best: list[Stuck],
    entries: _List,
    entry: int,
    depth: int,
    stack: Sequence[tuple[int, State, int, tuple[State, ...], bool, int]],
    state: State,
) -> None:
    """Keep the deepest point where a return entry stopped the search (and a few states)."""
    if best and depth < best[-1].depth:
        return
    blocking = entries.op[entry]
    if best and depth == best[-1].depth and best[-1].blocking == blocking:
        kept = best[-1]
        if len(kept.states) < KEPT_STATES and state not in kept.states:
            best[-1] = Stuck(depth, kept.last, blocking, kept.pending, (*kept.states, state))
        return
    if best and depth == best[-1].depth:
        return
    last = tuple(entries.op[taken[0]] for taken in stack[-LAST:])
    pending = tuple(entries.calls_before(entry))
    best[:] = [Stuck(depth, last, blocking, pending, (state,))]


def _last(best: list[Stuck]) -> Stuck | None:
    return best[-1] if best else None
