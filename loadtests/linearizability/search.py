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

Pure answers (reads and refusals: staleness.is_pure) change nothing in any state that explains
them. Such an answer is taken as soon as it can be, with no alternative searched (moving it
earlier in any order that works keeps that order working), and the cache keeps the pure
answers taken apart from the effectful ones (see _Seen). Without these two, every stale read
and memory refusal, whose window spans many operations, would multiply the configurations
by the places it could go.

What it costs: a history that passes is found along the first orders tried, in about one
configuration per operation (2,000 operations over 4 pools and 8 clients: well under a
second). A failure is proved only when every order of what came before the failing answer is
exhausted, which grows with the operations in flight at once and with the unknown operations
that may have happened (each one may be taken at any later point): most of the planted faults
of the tests are found in under a second, the worst in seconds. Many unknown outcomes (a tenth
of the history) can exhaust the budget of a history that passes.

A time budget bounds each partition: past it the verdict is `unknown`, never a guess.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from loadtests.linearizability.entries import Entries
from loadtests.linearizability.history import Operation, Outcome
from loadtests.linearizability.model import PoolModel
from loadtests.linearizability.quick import quick_test
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


class _Seen:
    """The configurations reached: (linearized set, state), Lowe's memoisation, with the pure
    answers (reads, refusals) kept apart. A configuration whose effectful set and state were
    reached before with a superset of its pure answers taken is cut: whatever completes it
    completes that one too (leave out the pure answers that one took already), so it failed,
    or is the one being searched. Each (effectful set, state) keeps an antichain of the pure
    sets reached with it."""

    def __init__(self) -> None:
        self.pure: dict[tuple[int, State], list[int]] = {}
        self.size = 0

    def visit(self, core: int, light: int, state: State) -> bool:
        """False if this configuration is cut; else it is recorded."""
        kept = self.pure.get((core, state))
        if kept is None:
            self.pure[(core, state)] = [light]
        else:
            if any(not light & ~done for done in kept):
                return False
            kept[:] = [done for done in kept if done & ~light]
            kept.append(light)
        self.size += 1
        return True


# One choice on the stack: its call entry, the state before it, the choice taken and the
# choices, whether it was forced (no alternative to search), and the pass it was taken in.
Choice = tuple[int, State, int, tuple[State, ...], bool, int]


class _Walk:
    """One search: its list, its cache, where it stands."""

    def __init__(self, model: PoolModel, ops: tuple[Operation, ...], calls: Sequence[float]):
        self.model, self.ops = model, ops
        self.known = [op.outcome is Outcome.OK for op in ops]
        self.pure = [is_pure(op) for op in ops]
        self.quick = [quick_test(model, op) for op in ops]
        returns = [
            op.completed if op.completed is not None and ok else math.inf
            for op, ok in zip(ops, self.known, strict=True)
        ]
        self.entries = Entries(calls, returns)
        self.seen = _Seen()
        self.stack: list[Choice] = []
        self.state = model.initial()
        self.core = self.light = self.depth = 0  # effectful and pure sets taken; answers taken
        self.remaining = sum(self.known)
        self.best: list[Stuck] = []
        self.memo_state: State | None = None
        self.memo: dict[int, tuple[State, ...]] = {}

    def choices(self, k: int) -> tuple[State, ...]:
        """What operation k may lead to from the current state (remembered for that state)."""
        if self.memo_state is not self.state:
            self.memo_state, self.memo = self.state, {}
        found = self.memo.get(k)
        if found is None:
            test = self.quick[k]
            if test is None:
                found = self.model.successors(self.state, self.ops[k])
            else:
                found = (self.state,) if test(self.state) else ()
            self.memo[k] = found
        return found

    def take(
        self, entry: int, choices: tuple[State, ...], first: int, forced: bool, phase: int
    ) -> bool:
        """Linearize `entry`'s operation by its first choice, from `first`, not reached yet."""
        k = self.entries.op[entry]
        bit = 1 << k
        core, light = (
            (self.core, self.light | bit) if self.pure[k] else (self.core | bit, self.light)
        )
        for choice in range(first, len(choices)):
            after = choices[choice]
            if not self.seen.visit(core, light, after):
                continue
            self.stack.append((entry, self.state, choice, choices, forced, phase))
            self.state, self.core, self.light = after, core, light
            self.entries.lift(entry)
            self.remaining -= self.known[k]
            self.depth += self.known[k]
            return True
        return False

    def back(self) -> tuple[int, tuple[State, ...], int, int] | None:
        """Undo choices to the last that has alternatives: (entry, choices, next, pass)."""
        while self.stack:
            entry, self.state, choice, choices, forced, phase = self.stack.pop()
            k = self.entries.op[entry]
            if self.pure[k]:
                self.light &= ~(1 << k)
            else:
                self.core &= ~(1 << k)
            self.entries.unlift(entry)
            self.remaining += self.known[k]
            self.depth -= self.known[k]
            if not forced:
                return entry, choices, choice + 1, phase
        return None


def search(
    model: PoolModel, operations: Sequence[Operation], calls: Sequence[float], budget: float
) -> Search:
    """Linearize `operations` (call times given: invocation less the stale window)."""
    ops = tuple(operations)
    walk = _Walk(model, ops, calls)
    entries = walk.entries
    deadline = time.monotonic() + budget
    entry, phase, steps = entries.next[0], 0, 0
    resume: tuple[tuple[State, ...], int] | None = None
    clean = True  # no entry of this pass was cut by the cache so far
    while walk.remaining:
        steps += 1
        if not steps & 255 and time.monotonic() > deadline:
            return Search("unknown", ops, tuple(calls), walk.seen.size, _last(walk.best))
        if entries.is_call[entry]:
            k = entries.op[entry]
            if walk.known[k] == phase:  # answered ones in pass 0, unknown ones in pass 1
                entry = entries.next[entry]
                continue
            if resume is None:
                found = walk.memo.get(k) if walk.memo_state is walk.state else None
                choices, first = found if found is not None else walk.choices(k), 0
            else:
                (choices, first), resume = resume, None
            # An answer that never changes anything, taken as soon as it can be, is never a
            # worse choice than taking it later: no alternative of it is searched.
            forced = walk.pure[k] and len(choices) == 1
            before = entries.prev[entry]
            if len(choices) > first and walk.take(entry, choices, first, forced, phase):
                # The state is the same after a pure answer: the entries before it, tried in
                # it already, need no second look, unless the cache cut one of them.
                entry = entries.next[before] if forced and clean else entries.next[0]
                phase, clean = 0, True
                continue
            clean = clean and len(choices) <= first
            if not forced:
                entry = entries.next[entry]
                continue
            # Taking it now was searched already, and failed: so does this configuration.
        elif phase == 0:
            entry, phase, clean = entries.next[0], 1, True  # now the unknown ones
            continue
        else:
            _note_stuck(walk.best, entries, entry, walk.depth, walk.stack, walk.state)
        undone = walk.back()
        if undone is None:
            return Search("fail", ops, tuple(calls), walk.seen.size, _last(walk.best))
        entry, choices, first, phase = undone
        resume, clean = (choices, first), False
    return Search("ok", ops, tuple(calls), walk.seen.size, None)


def _note_stuck(
    best: list[Stuck],
    entries: Entries,
    entry: int,
    depth: int,
    stack: Sequence[Choice],
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
