"""A history: every operation concurrent clients made, with when it was invoked, when it was
answered (monotonic seconds, one clock for the whole history) and what the answer was.

The contract between the recorder (which writes histories) and the checker (which reads them):

- `ok`: answered; the answer must be explained by the model, a refusal (`409
  insufficient_stock`) as much as a hold.
- `fail`: known not to have happened and nothing to explain (a `422` bad request, a `429` rate
  limit refused before anything was held, a request never sent).
- `unknown`: it may or may not have happened (timed out, cut off, `503`, `500`): the checker
  may place it anywhere after its invocation, or leave it out, and its answer is not checked.

`kind` and the shape of `args` / `result`:

- `reserve`: args `items` [[sku, qty], ...], `customer_id` (str or None), `key` (the
  Idempotency-Key, str or None); result `status` (HTTP), `error` (code or None), `id` (the
  reservation id or None), `state` (the reservation's status or None), `details` (dict).
- `release`: args `id`; result `status`, `error`, `state`.
- `read_reservation`: args `id`; result `status`, `error`, `state`, `items` [[sku, qty], ...].
- `read_product`: args `sku`; result `status`, `error`, `stock`, `reserved`, `sold`,
  `available`.
- `checkout`: args `id`; result `status`, `error`, `session` (the Checkout Session id or None).
- `pay`: args `id`, `session`, `outcome` ("paid", "failed" or "expired"); result `status`,
  `error`.

`pay` is one Stripe event about a reservation's session: invoked when the recorder asked the
simulator for it, completed when the service first answered a delivery of it `200` (the
simulator's delivery log); a duplicate or a late delivery changes nothing more. Its `result`
is the webhook's answer.

`pool` partitions the history: carts never cross pools, so each pool's operations are checked
on their own.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("reserve", "release", "read_reservation", "read_product", "checkout", "pay")


class Outcome(enum.StrEnum):
    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Operation:
    """One call and its answer."""

    id: int
    process: int  # the client that made it (a client makes one call at a time)
    pool: str
    kind: str
    args: Mapping[str, Any]
    invoked: float  # monotonic seconds
    completed: float | None  # None: never answered (unknown)
    outcome: Outcome
    result: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown operation kind {self.kind!r}")
        if self.completed is not None and self.completed < self.invoked:
            raise ValueError(f"operation {self.id} completed before it was invoked")
        if self.outcome is not Outcome.UNKNOWN and self.completed is None:
            raise ValueError(f"operation {self.id} is {self.outcome} without a completion time")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "process": self.process,
            "pool": self.pool,
            "kind": self.kind,
            "args": dict(self.args),
            "invoked": self.invoked,
            "completed": self.completed,
            "outcome": self.outcome.value,
            "result": dict(self.result),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Operation:
        return cls(
            id=int(data["id"]),
            process=int(data["process"]),
            pool=str(data["pool"]),
            kind=str(data["kind"]),
            args=dict(data["args"]),
            invoked=float(data["invoked"]),
            completed=None if data["completed"] is None else float(data["completed"]),
            outcome=Outcome(data["outcome"]),
            result=dict(data.get("result") or {}),
        )


def write(path: Path, operations: Iterable[Operation]) -> None:
    """One JSON object per line."""
    with path.open("w", encoding="utf-8") as out:
        for operation in operations:
            out.write(json.dumps(operation.to_json(), sort_keys=True) + "\n")


def read(path: Path) -> list[Operation]:
    with path.open(encoding="utf-8") as lines:
        return [Operation.from_json(json.loads(line)) for line in lines if line.strip()]


def by_pool(operations: Iterable[Operation]) -> Iterator[tuple[str, list[Operation]]]:
    """The history's partitions, each in invocation order."""
    pools: dict[str, list[Operation]] = {}
    for operation in operations:
        pools.setdefault(operation.pool, []).append(operation)
    for pool in sorted(pools):
        yield pool, sorted(pools[pool], key=lambda op: (op.invoked, op.id))
