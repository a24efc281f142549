"""Orders: one per Checkout Session, written by the webhook handlers, never deleted."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from domain.errors import InvalidRequest, ReservationError
from domain.statuses import OrderStatus
from persistence.mongo import Database, Document, as_utc, storage_errors, stored_time, utc_now
from persistence.revisions import Write, read_modify_replace

MAX_LIST_LIMIT = 1000


class OrderConflict(ReservationError):
    """Another Checkout Session already has an order for this reservation."""

    code = "order_conflict"
    status_code = 409


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    quantity: int
    unit_amount: int  # minor units, from the catalog at checkout


@dataclass(frozen=True, slots=True)
class Order:
    """The order view of docs/api.md, plus the statuses it went through.

    On `OrderRepository.upsert`, created_at, updated_at and status_history are kept by the
    repository: the values given here count only for a new order's created_at.
    """

    checkout_session_id: str
    reservation_id: str
    status: OrderStatus
    items: tuple[OrderLine, ...]
    amount_total: int
    currency: str
    customer_email: str | None = None
    payment_intent: str | None = None
    # The reservation's customer (a verified one when customer tokens are configured), from
    # the sealed metadata of its Checkout Session.
    customer_id: str | None = None
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)
    status_history: tuple[tuple[str, datetime], ...] = ()


def _document(order: Order) -> Document:
    return {
        "checkout_session_id": order.checkout_session_id,
        "reservation_id": order.reservation_id,
        "status": order.status.value,
        "items": [
            {"sku": line.sku, "quantity": line.quantity, "unit_amount": line.unit_amount}
            for line in order.items
        ],
        "amount_total": order.amount_total,
        "currency": order.currency,
        "customer_email": order.customer_email,
        "payment_intent": order.payment_intent,
        "customer_id": order.customer_id,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "status_history": [
            {"status": str(status), "at": at} for status, at in order.status_history
        ],
    }


def _order(document: Document) -> Order:
    return Order(
        checkout_session_id=document["checkout_session_id"],
        reservation_id=document["reservation_id"],
        status=OrderStatus(document["status"]),
        items=tuple(
            OrderLine(line["sku"], int(line["quantity"]), int(line["unit_amount"]))
            for line in document["items"]
        ),
        amount_total=int(document["amount_total"]),
        currency=document["currency"],
        customer_email=document.get("customer_email"),
        payment_intent=document.get("payment_intent"),
        customer_id=document.get("customer_id"),
        created_at=as_utc(document["created_at"]),
        updated_at=as_utc(document["updated_at"]),
        status_history=tuple(
            (entry["status"], as_utc(entry["at"])) for entry in document.get("status_history", ())
        ),
    )


# Webhooks arrive in any order: an order's status only moves up this ladder, so every delivery
# order converges (a late `completed, unpaid` never undoes `paid`; nothing undoes a refund).
STATUS_RANK = {
    OrderStatus.AWAITING_PAYMENT: 0,
    OrderStatus.PAYMENT_FAILED: 1,
    OrderStatus.PAID: 2,
    # An oversold payment whose refund Stripe refused: a redelivered payment keeps it so.
    OrderStatus.REFUND_FAILED: 3,
    OrderStatus.REFUND_SETTLED: 4,
    OrderStatus.REFUNDED: 5,
    # Our own refund of a payment we could not serve: its charge.refunded must not relabel it.
    OrderStatus.REFUNDED_OVERSOLD: 6,
}


def _merged(current: Order | None, incoming: Order, now: datetime) -> Order:
    """What to store: the incoming order on top of the stored one, its history kept."""
    if current is not None and STATUS_RANK[incoming.status] < STATUS_RANK[current.status]:
        incoming = replace(incoming, status=current.status)
    if current is None:
        return replace(
            incoming,
            created_at=min(stored_time(incoming.created_at), now),
            updated_at=now,
            status_history=((incoming.status.value, now),),
        )
    history = current.status_history
    if incoming.status != current.status:
        history = (*history, (incoming.status.value, now))
    merged = replace(
        incoming,
        # A session's reservation never changes; a later event never erases what an earlier
        # one recorded.
        reservation_id=current.reservation_id,
        customer_email=incoming.customer_email or current.customer_email,
        payment_intent=incoming.payment_intent or current.payment_intent,
        customer_id=incoming.customer_id or current.customer_id,
        created_at=current.created_at,
        updated_at=current.updated_at,
        status_history=history,
    )
    return merged if merged == current else replace(merged, updated_at=now)


def _normalized(order: Order) -> Order:
    return replace(order, status=OrderStatus(order.status))


class OrderRepository:
    """The `orders` collection, keyed by Checkout Session id (and unique by reservation id)."""

    def __init__(self, db: Database) -> None:
        self.collection = db["orders"]

    async def get(self, checkout_session_id: str) -> Order | None:
        """The order of a Checkout Session, or None."""
        async with storage_errors():
            document = await self.collection.find_one({"checkout_session_id": checkout_session_id})
        return None if document is None else _order(document)

    async def get_by_payment_intent(self, payment_intent: str) -> Order | None:
        """The order paid by a PaymentIntent, or None."""
        async with storage_errors():
            document = await self.collection.find_one({"payment_intent": payment_intent})
        return None if document is None else _order(document)

    async def list(
        self, status: OrderStatus | None = None, limit: int = 100
    ) -> builtins.list[Order]:
        """Orders, newest first, optionally of one status."""
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= MAX_LIST_LIMIT
        ):
            raise InvalidRequest(f"limit must be from 1 to {MAX_LIST_LIMIT}", field="limit")
        query = {} if status is None else {"status": OrderStatus(status).value}
        async with storage_errors():
            cursor = self.collection.find(query).sort([("created_at", -1), ("_id", -1)])
            documents = await cursor.limit(limit).to_list()
        return [_order(document) for document in documents]

    async def count_by_status(self) -> dict[str, int]:
        """How many orders there are of each status (the operations page)."""
        pipeline: builtins.list[Document] = [{"$group": {"_id": "$status", "count": {"$sum": 1}}}]
        async with storage_errors():
            cursor = await self.collection.aggregate(pipeline)
            rows = await cursor.to_list()
        return {str(row["_id"]): int(row["count"]) for row in sorted(rows, key=lambda r: r["_id"])}

    async def upsert(self, order: Order) -> Order:
        """Record an order by its session id; idempotent; a new status joins the history."""
        incoming = _normalized(order)

        def change(document: Document | None) -> Write[Order]:
            current = None if document is None else _order(document)
            stored = _merged(current, incoming, utc_now())
            return Write(None if stored == current else _document(stored), stored)

        def conflict() -> OrderConflict:
            return OrderConflict(
                "the reservation already has an order of another session",
                reservation_id=order.reservation_id,
                checkout_session_id=order.checkout_session_id,
            )

        return await read_modify_replace(
            self.collection,
            {"checkout_session_id": order.checkout_session_id},
            change,
            conflict=conflict,
        )

    async def with_status(
        self, statuses: Iterable[OrderStatus], batch: int = 500
    ) -> AsyncIterator[Order]:
        """Every order of the given statuses (reconcile walks the paid ones)."""
        wanted = sorted({OrderStatus(status).value for status in statuses})
        async with storage_errors():
            cursor = self.collection.find({"status": {"$in": wanted}}).batch_size(batch)
            async for document in cursor:
                yield _order(document)
