"""Linearizable histories made by the model itself: to test the checker, and to time it.

Clients call one at a time, each call lasting a random while; every call takes effect at a
random moment inside its interval (a product read at a moment up to `stale` before it, as the
read cache may), and the model, applied in the order of those moments, gives its answer. Such
a history is linearizable by construction, whatever the interleaving, so the checker must
pass it. Some calls end `unknown`: their answer is dropped, and they took effect or did not.

    python -m loadtests.linearizability.synthetic --operations 2000 [--fault memory]

prints the verdict and how long the check took.
"""

from __future__ import annotations

import argparse
import heapq
import random
import time
from dataclasses import dataclass, replace
from typing import Any

from loadtests.linearizability.carts import cart
from loadtests.linearizability.checker import check
from loadtests.linearizability.history import Operation, Outcome
from loadtests.linearizability.initial import Initial, Product
from loadtests.linearizability.model import PoolModel
from loadtests.linearizability.state import SHOWN, State

# Bugs to plant, one at a time (issue 28): a reserve that checks and holds in two steps (it
# holds units another hold took meanwhile), a sold-out memory that never lapses (per process:
# clients of even and odd numbers), a release that gives the units back twice.
FAULTS = ("oversell", "memory", "double_release")
KINDS = ("reserve", "release", "checkout", "pay", "read_product", "read_reservation")
WEIGHTS = (40, 12, 12, 10, 16, 10)


@dataclass(frozen=True, slots=True)
class Shape:
    operations: int = 2000
    pools: int = 4
    skus: int = 3  # per pool
    stock: int = 12
    limit: int | None = 4
    customers: int = 6  # per pool
    clients: int = 8
    unknown: float = 0.02  # share of calls whose outcome is unknown
    longest: float = 0.03  # seconds a call lasts at most
    stale: float = 0.0  # how far back a product read may see
    fault: str | None = None  # one of FAULTS, planted in the service the model stands for


class _Pool:
    """One pool's model and state, and what the clients know of it."""

    def __init__(self, model: PoolModel) -> None:
        self.model = model
        self.state: State = model.initial()
        self.ids: list[str] = []
        self.sessions: dict[str, str] = {}
        self.keys: dict[str, tuple[list[list[Any]], str | None]] = {}
        self.made = 0
        self.remembered: dict[int, set[str]] = {0: set(), 1: set()}  # "memory": per process


def synthetic(shape: Shape, seed: int) -> tuple[Initial, list[Operation]]:
    """A history of `shape` (linearizable unless a fault is planted), the same for a seed."""
    if shape.fault is not None and shape.fault not in FAULTS:
        raise ValueError(f"no fault {shape.fault!r}: one of {', '.join(FAULTS)}")
    rng = random.Random(seed)
    products = [
        Product(f"p{p}-s{s}", f"p{p}", shape.stock, shape.limit)
        for p in range(shape.pools)
        for s in range(shape.skus)
    ]
    initial = Initial.of(products)
    pools = {name: _Pool(PoolModel(initial.pool(name))) for name in initial.pools()}
    # (effect, client, invoked, completed, kind): a read's effect may be up to `stale` early
    moments: list[tuple[float, int, float, float, str]] = []
    for client in range(shape.clients):
        now = rng.uniform(0, shape.longest)
        for _ in range(shape.operations // shape.clients):
            took = rng.uniform(0.0005, shape.longest)
            kind = rng.choices(KINDS, WEIGHTS)[0]
            earliest = now - shape.stale if kind == "read_product" else now
            moments.append((rng.uniform(earliest, now + took), client, now, now + took, kind))
            now += took + rng.uniform(0, shape.longest / 4)
    heapq.heapify(moments)
    operations: list[Operation] = []
    while moments:
        _, client, invoked, completed, kind = heapq.heappop(moments)
        pool = pools[rng.choice(sorted(pools))]
        pool_name = pool.model.products[0].pool
        args = _request(rng, pool, kind, shape)
        op = Operation(
            len(operations), client, pool_name, kind, args, invoked, completed, Outcome.OK
        )
        operations.append(_answer(rng, pool, op, shape))
    return initial, operations


def _request(rng: random.Random, pool: _Pool, kind: str, shape: Shape) -> dict[str, Any]:
    skus = pool.model.skus
    if kind == "reserve":
        if pool.keys and rng.random() < 0.1:  # a retry under a key used before
            used = rng.choice(sorted(pool.keys))
            items, buyer = pool.keys[used]
            return {"items": items, "customer_id": buyer, "key": used}
        lines = [[rng.choice(skus), rng.randint(1, 2)] for _ in range(rng.choice((1, 1, 2)))]
        customer = None if rng.random() < 0.2 else f"c{rng.randrange(shape.customers)}"
        key = f"k{pool.made}-{rng.randrange(10**6)}" if rng.random() < 0.5 else None
        if key is not None:
            pool.keys[key] = (lines, customer)
        return {"items": lines, "customer_id": customer, "key": key}
    if kind == "read_product":
        return {"sku": rng.choice(skus)}
    if kind == "pay" and pool.sessions:
        rid = rng.choice(sorted(pool.sessions))
        outcome = rng.choices(("paid", "failed", "expired"), (7, 2, 1))[0]
        return {"id": rid, "session": pool.sessions[rid], "outcome": outcome}
    rid = rng.choice(pool.ids) if pool.ids else "none.r0"
    return {"id": rid, "session": None, "outcome": "paid"} if kind == "pay" else {"id": rid}


def _answer(rng: random.Random, pool: _Pool, op: Operation, shape: Shape) -> Operation:
    """`op` with the model's answer, the model's state moved on (or an unknown outcome)."""
    candidates = _candidates(pool, op)
    for result in candidates:
        answered = replace(op, result=result)
        after = pool.model.successors(pool.state, answered)
        if after:
            break
    else:
        raise AssertionError(f"the model explains no answer to {op}")
    if rng.random() < shape.unknown:
        lost = replace(op, completed=None, outcome=Outcome.UNKNOWN)
        effects = pool.model.successors(pool.state, lost)
        if effects and rng.random() < 0.5:
            pool.state = rng.choice(effects)
        return lost
    reached = after[0]
    if shape.fault is not None:
        result, reached = _planted(shape.fault, rng, pool, op, result, reached)
        answered = replace(op, result=result)
    pool.state = reached
    rid = result.get("id")
    if op.kind == "reserve" and rid and rid not in pool.ids:
        pool.ids.append(str(rid))
    if op.kind == "checkout" and result.get("session"):
        pool.sessions[str(op.args["id"])] = str(result["session"])
    return answered


def _planted(
    fault: str, rng: random.Random, pool: _Pool, op: Operation, result: dict[str, Any], after: State
) -> tuple[dict[str, Any], State]:
    """The answer and the state of a service with `fault`, where it differs from the model."""
    model, state = pool.model, pool.state
    items = cart(op.args.get("items") or ())
    customer, key = op.args.get("customer_id"), op.args.get("key")
    if fault == "oversell" and result.get("error") == "insufficient_stock" and rng.random() < 0.3:
        pool.made += 1
        rid = f"{op.pool}.r{pool.made}"
        held: dict[str, Any] = {"status": 201, "error": None, "id": rid, "state": "held"}
        return held, model.hold(state, rid, items, customer, key)
    if fault == "memory" and op.kind == "reserve" and (customer, key) not in state.keys:
        memory = pool.remembered[op.process % 2]
        details = result.get("details") or {}
        if result.get("error") == "insufficient_stock" and details.get("available") == 0:
            memory.add(str(details["sku"]))
        for sku, qty in items:
            if sku in memory:
                details = {"sku": sku, "requested": qty, "available": 0}
                return {"status": 409, "error": "insufficient_stock", "details": details}, state
    if fault == "double_release" and op.kind == "release" and after != state:
        reserved = list(after.reserved)
        for sku, qty in state.reservations[str(op.args["id"])].items:
            reserved[model.index[sku]] -= qty
        return result, after.changed(reserved=tuple(reserved))
    return result, after


def _candidates(pool: _Pool, op: Operation) -> list[dict[str, Any]]:
    state, model = pool.state, pool.model
    if op.kind == "reserve":
        pool.made += 1
        new_id = f"{op.pool}.r{pool.made}"
        customer, key = op.args.get("customer_id"), op.args.get("key")
        bound = state.keys.get((customer, key)) if key else None
        if bound is not None:
            rid = new_id if bound.startswith("?") else bound
            shown = SHOWN[state.reservations[bound].status]
            return [{"status": 201, "error": None, "id": rid, "state": shown, "details": {}}]
        refused = model.refusal(state, cart(op.args["items"]), customer)
        if refused is None:
            return [{"status": 201, "error": None, "id": new_id, "state": "held", "details": {}}]
        code, details = refused
        return [{"status": 409, "error": code, "id": None, "state": None, "details": details}]
    if op.kind == "read_product":
        sku = str(op.args["sku"])
        i = model.index[sku]
        counts = {"stock": model.total[i], "reserved": state.reserved[i], "sold": state.sold[i]}
        return [{"status": 200, "error": None, "available": model.available(state, sku), **counts}]
    found = state.reservations.get(str(op.args.get("id")))
    if op.kind == "read_reservation":
        if found is None:
            return [{"status": 404, "error": "not_found"}]
        lines = [list(line) for line in found.items]
        return [{"status": 200, "error": None, "state": SHOWN[found.status], "items": lines}]
    if op.kind == "release":
        return [
            {"status": 200, "error": None, "state": "released"},
            {"status": 409, "error": "already_committed", "state": None},
            {"status": 404, "error": "not_found", "state": None},
        ]
    if op.kind == "checkout":
        pool.made += 1
        session = found.session if found and found.session not in (None, "?") else f"cs_{pool.made}"
        return [
            {"status": 201, "error": None, "session": session},
            {"status": 409, "error": "reservation_not_held", "session": None},
            {"status": 404, "error": "not_found", "session": None},
        ]
    return [{"status": 200, "error": None}]


def main() -> None:
    """Time the check of a synthetic history (it must pass, or fail with a fault planted)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--operations", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pools", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault", choices=FAULTS, help="plant this fault (the check must fail)")
    options = parser.parse_args()
    shape = Shape(
        operations=options.operations,
        clients=options.clients,
        pools=options.pools,
        fault=options.fault,
    )
    initial, operations = synthetic(shape, options.seed)
    started = time.monotonic()
    verdict = check(operations, initial=initial)  # the default windows
    print(verdict.text())
    print(f"checked {len(operations)} operations in {time.monotonic() - started:.2f} s")


if __name__ == "__main__":
    main()
