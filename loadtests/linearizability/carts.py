"""What a reserve asks for, as the model reads it: the cart as the service holds it (one line
per SKU, summed, first-seen order: reserve.lua's parse_items), the customer, the key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadtests.linearizability.history import Operation
from loadtests.linearizability.staleness import is_memory_refusal
from loadtests.linearizability.state import Items


def cart(lines: Iterable[Sequence[Any]]) -> Items:
    """[[sku, qty], ...] as the service holds it: one line per SKU, summed, first-seen order."""
    summed: dict[str, int] = {}
    for sku, qty in lines:
        summed[str(sku)] = summed.get(str(sku), 0) + int(qty)
    return tuple(summed.items())


@dataclass(frozen=True, slots=True)
class Request:
    """A reserve's cart (summed), customer, key; whether a SKU is not in this pool; for a
    refusal the sold-out memory may have given, the SKU it names if in the cart; the id."""

    items: Items
    customer: str | None
    key: str | None
    unknown_sku: bool
    memory_sku: str | None
    memory: bool
    rid: str


def read_request(op: Operation, skus: Mapping[str, int]) -> Request:
    """A reserve operation's request; `skus`: the pool's."""
    items = cart(op.args.get("items") or ())
    memory = None
    if is_memory_refusal(op):
        memory = str((op.result.get("details") or {}).get("sku"))
    return Request(
        items,
        op.args.get("customer_id") or None,
        op.args.get("key") or None,
        any(sku not in skus for sku, _ in items),
        memory if memory in dict(items) else None,
        memory is not None,
        str(op.result.get("id") or f"?{op.id}"),
    )
