"""The history being recorded: every call with its invocation and answer times (one monotonic
clock), and the payments, whose completion is the first `200` the service gave a delivery of
their event (the simulator's delivery log, read once every event was delivered)."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.customer_tokens import bearer, mint
from loadtests.linearizability.answers import Answer
from loadtests.linearizability.catalog import Catalog
from loadtests.linearizability.history import KINDS, Operation, Outcome

# Added to a delivery's answer time once moved to the monotonic clock: the two clocks are read
# a moment apart, and a completion noted late is safe (the checker may place the effect
# anywhere before it), one noted early is not.
CLOCK_MARGIN = 0.005


@dataclass
class Payment:
    """A `pay` asked of the simulator: its operation's fields, and the event it made."""

    id: int
    process: int
    pool: str
    args: Mapping[str, Any]
    invoked: float
    event: str


@dataclass
class Recording:
    """The operations so far, the reservation ids the clients were given, and the units they
    paid for (as far as they know)."""

    catalog: Catalog
    token_secret: str  # the shop's secret: customer ids are verified, as in production
    operations: list[Operation] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    owners: dict[str, str | None] = field(default_factory=dict)  # reservation id -> customer
    tokens: dict[str, str] = field(default_factory=dict)
    sold: Counter[str] = field(default_factory=Counter)
    _ids: Iterator[int] = field(default_factory=itertools.count)
    # monotonic - wall clock, read at the start: the delivery log is in wall-clock seconds.
    offset: float = field(default_factory=lambda: time.monotonic() - time.time())

    def next_id(self) -> int:
        return next(self._ids)

    async def record(
        self,
        process: int,
        pool: str,
        kind: str,
        args: Mapping[str, Any],
        answered: Awaitable[Answer],
        result: Callable[[Answer], dict[str, Any]],
    ) -> Answer:
        """Make one call (`answered`, not started yet) and note it: invoked before it was
        sent, completed after its answer came."""
        invoked = time.monotonic()
        answer = await answered
        self.operations.append(
            Operation(
                id=self.next_id(),
                process=process,
                pool=pool,
                kind=kind,
                args=dict(args),
                invoked=invoked,
                completed=answer.completed,
                outcome=answer.outcome,
                result=result(answer) if answer.outcome is not Outcome.FAIL else _refusal(answer),
            )
        )
        return answer

    async def record_pay(
        self, process: int, pool: str, args: Mapping[str, Any], asked: Awaitable[Answer]
    ) -> bool:
        """Ask the simulator for a payment event; whether it made one. A refusal (the session
        is no longer open) made none: a failed operation. An event made is completed later,
        from the delivery log (`complete_payments`)."""
        invoked = time.monotonic()
        answer = await asked
        event = answer.body.get("id") if answer.status == 200 else None
        if isinstance(event, str):
            self.payments.append(Payment(self.next_id(), process, pool, args, invoked, event))
            return True
        outcome = Outcome.FAIL if answer.status is not None else Outcome.UNKNOWN
        self.operations.append(
            Operation(
                id=self.next_id(),
                process=process,
                pool=pool,
                kind="pay",
                args=dict(args),
                invoked=invoked,
                completed=answer.completed if outcome is Outcome.FAIL else None,
                outcome=outcome,
                result=_refusal(answer),
            )
        )
        return False

    def complete_payments(self, deliveries: Sequence[Mapping[str, Any]]) -> int:
        """Each payment's operation, completed at the first `2xx` answer to a delivery of its
        event (unknown when none came); how many were never delivered."""
        first: dict[str, tuple[float, int]] = {}
        for delivery in deliveries:
            if not delivery.get("ok") or delivery.get("answered") is None:
                continue
            answered = float(delivery["answered"])
            event = str(delivery["event_id"])
            if event not in first or answered < first[event][0]:
                first[event] = (answered, int(delivery["status"]))
        undelivered = 0
        for payment in self.payments:
            found = first.get(payment.event)
            if found is None:
                undelivered += 1
            completed = None if found is None else found[0] + self.offset + CLOCK_MARGIN
            self.operations.append(
                Operation(
                    id=payment.id,
                    process=payment.process,
                    pool=payment.pool,
                    kind="pay",
                    args=dict(payment.args),
                    invoked=payment.invoked,
                    completed=None if completed is None else max(completed, payment.invoked),
                    outcome=Outcome.UNKNOWN if found is None else Outcome.OK,
                    result={} if found is None else {"status": found[1], "error": None},
                )
            )
        self.payments.clear()
        return undelivered

    def covers_every_kind(self) -> bool:
        """Whether every kind of call was made at least once (a payment: asked for)."""
        kinds = {op.kind for op in self.operations} | ({"pay"} if self.payments else set())
        return kinds >= set(KINDS)

    def learn(self, reservation: str, customer: str | None) -> None:
        if reservation not in self.owners:
            self.known.append(reservation)
            self.owners[reservation] = customer

    def headers(self, customer: str | None) -> dict[str, str]:
        """The customer's token (minted once: it lasts 15 minutes, longer than a run); none
        for an anonymous buyer."""
        if customer is None:
            return {}
        if customer not in self.tokens:
            self.tokens[customer] = mint(customer, self.token_secret)
        return bearer(self.tokens[customer])

    def headers_of(self, reservation: str) -> dict[str, str]:
        """Its customer's token: a verified customer's reservation is theirs alone."""
        return self.headers(self.owners.get(reservation))

    def may_sell(self, items: Sequence[Sequence[Any]]) -> bool:
        """Whether paying for `items` leaves at least half of each SKU's stock unsold."""
        totals = {sku: p.total for skus in self.catalog.pools.values() for sku, p in skus.items()}
        return all(self.sold[sku] + qty <= totals[sku] // 2 for sku, qty in items)

    def sell(self, items: Sequence[Sequence[Any]]) -> None:
        for sku, qty in items:
            self.sold[sku] += qty

    def history(self) -> list[Operation]:
        return sorted(self.operations, key=lambda op: (op.invoked, op.id))


def _refusal(answer: Answer) -> dict[str, Any]:
    """What refused a call known not to have happened (nothing for the checker to explain;
    kept for whoever reads the history)."""
    return {"status": answer.status, "error": answer.error}
