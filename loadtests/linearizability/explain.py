"""What to print when a partition is not linearizable: the shortest window the search found.

The search's deepest point (search.Stuck) is where an answered operation returned before any
order of what came before it could explain it. The window is what overlapped it there: the
operations still pending at that point (invoked, or inside their stale window, before it
returned; it among them) and their answers, after the last few operations placed before that
point, in the order the search placed them (what led to the states shown). For each state the
search stood in there (a few, when several orders led to the same depth), the model says why
each pending answer cannot come next: those states are the ones that could not explain them.
Pending operations of unknown outcome are shown when one of those states could take them (an
unknown operation has no answer to explain: the search may take it or leave it out).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loadtests.linearizability.history import Operation, Outcome
from loadtests.linearizability.model import PoolModel, cart_text
from loadtests.linearizability.search import Search
from loadtests.linearizability.state import State


@dataclass(frozen=True, slots=True)
class Row:
    op: int  # the operation's id in the history
    process: int
    kind: str
    invoked: float
    completed: float | None
    window: float  # how far back its answer may see (stale reads, the sold-out memory)
    args: str
    answer: str
    placed: bool  # linearized before the point where the search got stuck
    blocking: bool  # the operation whose return stopped the search

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "process": self.process,
            "kind": self.kind,
            "invoked": self.invoked,
            "completed": self.completed,
            "window": self.window,
            "args": self.args,
            "answer": self.answer,
            "placed": self.placed,
            "blocking": self.blocking,
        }


@dataclass(frozen=True, slots=True)
class Unexplained:
    """One model state at the stuck point, and why each pending answer cannot come next."""

    state: str
    reasons: tuple[tuple[int, str], ...]  # (operation id, why not; '' when it may come next)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "reasons": [list(item) for item in self.reasons]}


@dataclass(frozen=True, slots=True)
class Window:
    pool: str
    placed: int  # answered operations linearized at the stuck point
    answered: int  # answered operations in the partition
    rows: tuple[Row, ...]
    states: tuple[Unexplained, ...]
    proven: bool = True  # False: the budget ran out; the deepest point so far, as a hint

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "proven": self.proven,
            "placed": self.placed,
            "answered": self.answered,
            "rows": [row.to_json() for row in self.rows],
            "states": [state.to_json() for state in self.states],
        }

    def text(self) -> str:
        verdict = "not linearizable" if self.proven else "undecided (budget spent; not a proof)"
        lines = [
            f"pool {self.pool}: {verdict}; stuck after {self.placed} of "
            f"{self.answered} answered operations. The window:",
            f"  {'op':>6} {'proc':>4}  {'kind':<16} {'invoked':>10} {'completed':>10} "
            f"{'stale':>5}  args -> answer",
        ]
        for row in self.rows:
            mark = "*" if row.blocking else ("=" if row.placed else " ")
            done = "never" if row.completed is None else f"{row.completed:.3f}"
            lines.append(
                f"{mark} {row.op:>6} {row.process:>4}  {row.kind:<16} {row.invoked:>10.3f} "
                f"{done:>10} {row.window:>5.2f}  {row.args} -> {row.answer}"
            )
        lines.append(
            "  (= placed before the stuck point, in that order; * returned before any order of"
            " what came before could explain it; the rest were pending with it)"
        )
        for number, unexplained in enumerate(self.states, start=1):
            lines.append(f"  model state {number}: {unexplained.state}")
            for op, reason in unexplained.reasons:
                lines.append(f"    op {op}: {reason or 'may come next (a dead end further on)'}")
        return "\n".join(lines)


def window(model: PoolModel, pool: str, found: Search, windows: Mapping[int, float]) -> Window:
    """The readable window of a failed (or budget-spent) search's deepest point."""
    stuck = found.stuck
    if stuck is None:
        raise ValueError("the search has no stuck point")
    ops = found.operations
    # Pending there: what was invoked before the blocking operation returned (a stale
    # answer's window aside: one invoked later was not concurrent with it), unknown ones
    # when one of the states could take them; in invocation order.
    end = ops[stuck.blocking].completed or 0.0
    pending = sorted(
        (
            k
            for k in stuck.pending
            if ops[k].invoked <= end
            and (
                ops[k].outcome is Outcome.OK
                or any(model.successors(state, ops[k]) for state in stuck.states)
            )
        ),
        key=lambda k: (ops[k].invoked, ops[k].id),
    )
    rows = [_row(ops[k], windows, placed=True, blocking=False) for k in stuck.last]
    rows += [_row(ops[k], windows, placed=False, blocking=k == stuck.blocking) for k in pending]
    named = (*stuck.last, *pending)
    ids = [str(ops[k].args.get("id") or ops[k].result.get("id") or "") for k in named]
    answered = [k for k in pending if ops[k].outcome is Outcome.OK]
    states = tuple(
        Unexplained(
            describe(model, state, [i for i in ids if i]),
            tuple((ops[k].id, model.reason(state, ops[k])) for k in answered),
        )
        for state in stuck.states
    )
    total = sum(op.outcome is Outcome.OK for op in ops)
    return Window(pool, stuck.depth, total, tuple(rows), states, found.verdict == "fail")


def _row(op: Operation, windows: Mapping[int, float], *, placed: bool, blocking: bool) -> Row:
    result = {k: v for k, v in op.result.items() if v not in (None, {}, [])}
    status = result.pop("status", "?")
    answer = f"{op.outcome.value} {status} " + json.dumps(result, sort_keys=True)
    args = json.dumps({k: v for k, v in op.args.items() if v is not None}, sort_keys=True)
    return Row(
        op.id,
        op.process,
        op.kind,
        op.invoked,
        op.completed,
        windows.get(op.id, 0.0),
        args,
        answer,
        placed,
        blocking,
    )


def describe(model: PoolModel, state: State, ids: Iterable[str] = ()) -> str:
    """The counters, and the reservations named (as the model has them)."""
    parts = [
        f"{sku}: reserved {state.reserved[i]} sold {state.sold[i]} "
        f"available {model.available(state, sku)} of {model.total[i]}"
        for i, sku in enumerate(model.skus)
    ]
    for rid in dict.fromkeys(ids):
        reservation = state.reservations.get(rid)
        if reservation is None:
            parts.append(f"{rid}: none")
        else:
            extra = f" session {reservation.session}" if reservation.session else ""
            parts.append(f"{rid}: {reservation.status} {cart_text(reservation.items)}{extra}")
    return "; ".join(parts)
