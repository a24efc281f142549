"""Hand-written histories for the linearizability model and checker tests: one pool, answers
written as the service gives them (docs/api.md)."""

from __future__ import annotations

from typing import Any

from loadtests.linearizability.history import Operation, Outcome
from loadtests.linearizability.initial import Initial, Product

POOL = "p"


def initial(stock: dict[str, int], limit: int | None = None, hold_cap: int = 5) -> Initial:
    return Initial.of((Product(sku, POOL, units, limit) for sku, units in stock.items()), hold_cap)


class Script:
    """Operations of one pool, numbered in the order written."""

    def __init__(self) -> None:
        self.ops: list[Operation] = []

    def add(
        self,
        kind: str,
        at: tuple[float, float | None],
        args: dict[str, Any],
        result: dict[str, Any],
        process: int = 0,
    ) -> Operation:
        invoked, completed = at
        outcome = Outcome.UNKNOWN if completed is None else Outcome.OK
        op = Operation(
            len(self.ops),
            process,
            POOL,
            kind,
            args,
            invoked,
            completed,
            outcome,
            {} if completed is None else result,
        )
        self.ops.append(op)
        return op

    def hold(
        self,
        at: tuple[float, float | None],
        items: list[list[Any]],
        rid: str,
        *,
        customer: str | None = None,
        key: str | None = None,
        state: str = "held",
        process: int = 0,
    ) -> Operation:
        args = {"items": items, "customer_id": customer, "key": key}
        result: dict[str, Any] = {
            "status": 201,
            "error": None,
            "id": rid,
            "state": state,
            "details": {},
        }
        return self.add("reserve", at, args, result, process)

    def refuse(
        self,
        at: tuple[float, float],
        items: list[list[Any]],
        error: str,
        details: dict[str, Any],
        *,
        customer: str | None = None,
        key: str | None = None,
        process: int = 0,
    ) -> Operation:
        args = {"items": items, "customer_id": customer, "key": key}
        result: dict[str, Any] = {
            "status": 409,
            "error": error,
            "id": None,
            "state": None,
            "details": details,
        }
        return self.add("reserve", at, args, result, process)

    def sold_out(
        self, at: tuple[float, float], sku: str, qty: int = 1, *, process: int = 0
    ) -> Operation:
        details = {"sku": sku, "requested": qty, "available": 0}
        return self.refuse(at, [[sku, qty]], "insufficient_stock", details, process=process)

    def release(
        self,
        at: tuple[float, float | None],
        rid: str,
        status: int = 200,
        error: str | None = None,
        process: int = 0,
    ) -> Operation:
        state = "released" if status == 200 else None
        result: dict[str, Any] = {"status": status, "error": error, "state": state}
        return self.add("release", at, {"id": rid}, result, process)

    def product(
        self,
        at: tuple[float, float],
        sku: str,
        stock: int,
        reserved: int,
        sold: int = 0,
        *,
        process: int = 0,
    ) -> Operation:
        available = max(stock - reserved - sold, 0)
        result: dict[str, Any] = {
            "status": 200,
            "error": None,
            "stock": stock,
            "reserved": reserved,
            "sold": sold,
            "available": available,
        }
        return self.add("read_product", at, {"sku": sku}, result, process)

    def reservation(
        self, at: tuple[float, float], rid: str, state: str | None, items: list[list[Any]]
    ) -> Operation:
        if state is None:
            result: dict[str, Any] = {"status": 404, "error": "not_found", "state": None}
        else:
            result = {"status": 200, "error": None, "state": state, "items": items}
        return self.add("read_reservation", at, {"id": rid}, result)

    def checkout(
        self,
        at: tuple[float, float | None],
        rid: str,
        session: str | None,
        status: int = 201,
        error: str | None = None,
    ) -> Operation:
        result: dict[str, Any] = {"status": status, "error": error, "session": session}
        return self.add("checkout", at, {"id": rid}, result)

    def pay(
        self, at: tuple[float, float | None], rid: str, session: str, outcome: str = "paid"
    ) -> Operation:
        args = {"id": rid, "session": session, "outcome": outcome}
        return self.add("pay", at, args, {"status": 200, "error": None})
