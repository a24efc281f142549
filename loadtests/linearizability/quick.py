"""Fast tests of the pure answers the search meets most, each equal to
`bool(model.successors(state, op))` (tests/test_linearizability_model.py checks that on the
states of synthetic histories).

A stale product read or a refusal the sold-out memory may have given waits, pending, through
a window that spans many operations; the search asks about it again in every state it reaches
meanwhile. These tests compare a counter or two instead of running the model's general path.
"""

from __future__ import annotations

from collections.abc import Callable

from loadtests.linearizability.history import Operation, Outcome
from loadtests.linearizability.model import PoolModel, answered
from loadtests.linearizability.staleness import is_memory_refusal
from loadtests.linearizability.state import State

Test = Callable[[State], bool]


def quick_test(model: PoolModel, op: Operation) -> Test | None:
    """The test of `op`'s answer, or None where the model's general path is needed."""
    if op.outcome is not Outcome.OK:
        return None
    if op.kind == "read_product":
        return _read(model, op)
    if op.kind == "reserve" and is_memory_refusal(op):
        return _sold_out(model, op)
    return None


def _read(model: PoolModel, op: Operation) -> Test | None:
    result = op.result
    found = model.index.get(str(op.args.get("sku")))
    if found is None or "reserved" not in result or "sold" not in result:
        return None
    i: int = found
    reserved, sold, total = result["reserved"], result["sold"], model.total[i]
    fits = answered(op, 200, None, stock=total)
    if "available" in result and isinstance(reserved, int) and isinstance(sold, int):
        fits = fits and result["available"] == max(total - reserved - sold, 0)
    return lambda state: fits and state.reserved[i] == reserved and state.sold[i] == sold


def _sold_out(model: PoolModel, op: Operation) -> Test | None:
    request = model.request(op)
    if request.unknown_sku or request.memory_sku is None:
        return None
    i = model.index[request.memory_sku]
    total = model.total[i]
    scope = (request.customer, request.key) if request.key else None
    return lambda state: (
        total - state.reserved[i] - state.sold[i] <= 0
        and (scope is None or scope not in state.keys)
    )
