"""The answers the service may give from a past state, by design, and how far back.

The sold-out memory (reservation/core/soldout.py) refuses from a Redis answer up to two of its
periods old (it re-arms once while one request asks Redis again), and the read cache
(reservation/core/readcache.py) answers product reads from up to one period ago; the margin
is for the reply's way back to the process that remembers it. Such answers are explained by
the state at any moment in [invoked - window, completed]: the checker moves their invocation
back by the window.

Why that is sound: these answers change nothing. If the service's real order of effects is a
linearization of the other operations, inserting the stale answer just after the effects that
made the state it saw keeps every real-time constraint of the widened history (whatever ended
before invoked - window came before that state, whatever began after completed came after).
It does not hide a memory that never lapses or a read older than the window: those find no
such moment.

The memory's bound holds however the SKU is asked about: a refusal never rests on a Redis
answer more than two periods old (`SoldOutMemory._heard`; after a quiet spell the memory has
forgotten the SKU and the next requests ask Redis). The late buyer (comeback.py) asks after
such a spell on purpose, each cycle.

A `409 insufficient_stock` with `available` 0 may be the memory's or Redis's; the memory's
condition (no unit of that SKU free at some moment) covers Redis's (none free then, in its
order of refusals), so one check serves both. It is not explained when its key already stands
for a reservation: such a key goes to Redis and finds its reservation. A key whose request was
refused is claimed by the service but binds nothing in the model, so a memory refusal of a
retry under it passes (the service would ask Redis): a small blind spot, not a false alarm.
"""

from __future__ import annotations

from loadtests.linearizability.history import Operation, Outcome

SOLD_OUT_SECONDS = 0.1  # RESERVATION_SOLD_OUT_CACHE_SECONDS
READ_CACHE_SECONDS = 0.1  # RESERVATION_READ_CACHE_SECONDS
MARGIN_SECONDS = 0.1  # a Redis reply's way back to the process that remembers it


def soldout_window(period: float) -> float:
    """How far back a sold-out memory of `period` may answer from: two periods (it re-arms
    once while one request asks Redis again) and the margin for the reply's way back."""
    return 2 * period + MARGIN_SECONDS


DEFAULT_SOLDOUT_WINDOW = soldout_window(SOLD_OUT_SECONDS)
DEFAULT_READ_WINDOW = READ_CACHE_SECONDS + MARGIN_SECONDS


def is_memory_refusal(op: Operation) -> bool:
    """A `409 insufficient_stock` with nothing available: it may come from the sold-out memory."""
    result = op.result
    details = result.get("details") or {}
    return (
        op.kind == "reserve"
        and result.get("status") == 409
        and result.get("error") == "insufficient_stock"
        and details.get("available") == 0
    )


def stale_window(op: Operation, soldout_window: float, read_window: float) -> float:
    """How long before its invocation the state that explains this answer may be."""
    if op.outcome is not Outcome.OK:
        return 0.0
    if op.kind == "read_product":
        return read_window
    if is_memory_refusal(op):
        return soldout_window
    return 0.0


def is_pure(op: Operation) -> bool:
    """Whether every state that explains this answer is left as it was: a read, a refusal.

    The search takes such an answer as soon as it can be explained, with no alternative:
    taking it later is never better, as it changes nothing whenever it is explained. (An
    answer that changes nothing in one state and something in another, such as a payment, is
    not pure.)"""
    if op.outcome is not Outcome.OK:
        return False
    status = op.result.get("status")
    return (
        op.kind in ("read_product", "read_reservation")
        or (op.kind == "reserve" and status != 201)
        or (op.kind == "release" and status != 200)
        or (op.kind == "checkout" and status == 404)
    )
