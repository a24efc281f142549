"""A waiting list's verbs: a buyer joins (POST /v1/waitlist/{sku}), reads their entry and leaves
(GET and DELETE /v1/waitlist/{sku}/{customer_id}); its operators read the line, remove a buyer,
close and open the list.

Redis decides (reservation/core/waitlist.py, one script per call); MongoDB keeps a copy of the
joins for a rebuild after a Redis loss (persistence/waitlist.py), written after Redis answered.
A copy that fails to be written does not fail the request, whose answer Redis gave already: it
is logged as a warning and counted (reservation_waitlist_record_failures_total{operation}).

The buyer is named as for a hold (reservation/customers/caller.py): the verified customer when
customer tokens are configured, else the body's (or the path's) customer_id. With tokens on, an
entry is its customer's: somebody else reading or leaving it is refused (CustomerMismatch, or
CustomerTokenRequired without a token), unless the request is the admin's."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.errors import StorageUnavailable
from domain.waitlist import LineState, WaiterState
from persistence.waitlist import WaitlistJoins
from reservation.core.cart import check_customer
from reservation.core.inventory import Inventory
from reservation.core.ratelimit import RateLimiter
from reservation.customers.caller import Caller
from reservation.metrics import Metrics
from reservation.usecases.limits import limit_client, limit_customer

logger = logging.getLogger("reservation")

# The statuses of an entry whose join is over: no longer in line, nor holding an offer.
ENDED = frozenset({"left", "lapsed", "bought"})


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A join as asked: the SKU, the units wanted, the body's customer_id (None: none), and
    the client address counted against the limit per address (None: not counted)."""

    sku: str
    quantity: int
    customer_id: str | None
    client_address: str | None


@dataclass(frozen=True, slots=True)
class Waitlist:
    """The waiting lists of the SKUs, with their joins recorded in MongoDB."""

    inventory: Inventory
    joins: WaitlistJoins
    rate_limiter: RateLimiter
    metrics: Metrics

    async def join(self, caller: Caller, request: JoinRequest) -> WaiterState:
        """The buyer's entry at the end of the line (`created`), or theirs from before. A join
        counts against the limits of a hold (client address, then customer): an entry keeps
        units for its buyer, so a crowd of joins from one address must be bounded."""
        customer_id = caller.acting_for(request.customer_id)
        if request.client_address is not None:
            await limit_client(self.rate_limiter, request.client_address)
        await limit_customer(self.rate_limiter, customer_id)
        state = await self.inventory.waitlists.join(request.sku, customer_id, request.quantity)
        if state.created:
            await self._record(state)
        return state

    async def read(self, caller: Caller, sku: str, customer_id: str) -> WaiterState:
        """The customer's entry (NotInLine for none), for that customer or the admin."""
        customer = caller.acting_for(check_customer(customer_id))
        return await self.inventory.waitlists.read(sku, customer)

    async def leave(self, caller: Caller, sku: str, customer_id: str) -> WaiterState:
        """The customer leaves the line (an operator's remove is the same call, as the admin);
        an entry no longer waiting is answered as it is."""
        customer = caller.acting_for(check_customer(customer_id))
        state = await self.inventory.waitlists.leave(sku, customer)
        if state.status in ENDED:
            await self._mark_left(state)
        return state

    async def line(self, sku: str) -> LineState:
        return await self.inventory.waitlists.line(sku)

    async def close(self, sku: str) -> int:
        """Nobody joins until it is opened; everyone waiting leaves (how many)."""
        removed = await self.inventory.waitlists.close(sku)
        # Joins made until now: an open and a new join after this close are later.
        closed_at = datetime.now(UTC)
        try:
            await self.joins.close(sku, closed_at)
        except StorageUnavailable as exc:
            self._failed("close", exc, sku=sku)
        return removed

    async def open(self, sku: str) -> None:
        await self.inventory.waitlists.open(sku)

    async def _record(self, state: WaiterState) -> None:
        try:
            pool = await self.inventory.pools.of_sku(state.sku)
            await self.joins.record(pool, state)
        except StorageUnavailable as exc:
            self._failed("join", exc, sku=state.sku, customer_id=state.customer_id)

    async def _mark_left(self, state: WaiterState) -> None:
        try:
            await self.joins.mark_left(state.sku, state.customer_id, state.joined_at)
        except StorageUnavailable as exc:
            self._failed("leave", exc, sku=state.sku, customer_id=state.customer_id)

    def _failed(self, operation: str, exc: StorageUnavailable, **context: str) -> None:
        self.metrics.waitlist_record_failures.labels(operation).inc()
        logger.warning(
            "waiting list %s of %s not recorded in MongoDB (Redis answered): %s",
            operation,
            context.get("sku"),
            exc.message,
            extra={**context, "operation": operation, "outcome": "record_failed"},
        )
