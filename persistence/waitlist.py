"""The joins of the waiting lists, kept in MongoDB so that a line lost with Redis can be rebuilt.

Redis decides a waiting list (reservation/core/waitlist.py); this is its durable copy, written
after Redis answered: a new join is recorded, and marked left when the buyer leaves, an operator
removes them or closes the list. One document per join, `_id` "<sku>|<customer>|<joined ms>"
(the joined_at Redis answered): a buyer who left and joins again is a new document, so a late
"left" of the old join can never end the new one, and each join's history stays.

Redis alone knows what happened to a join afterwards (offered, bought, lapsed): a join reads
"waiting" here until it is marked left. `waiting_joins` is what a rebuild puts back in line.
"""

from __future__ import annotations

import builtins
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pymongo.errors import DuplicateKeyError

from domain.waitlist import WaiterState
from persistence.mongo import Database, Document, as_utc, storage_errors, stored_time, utc_now
from persistence.revisions import Write, read_modify_replace, revised

JoinState = Literal["waiting", "left"]


@dataclass(frozen=True, slots=True)
class WaitlistJoin:
    """One join of a SKU's waiting list. `position`: the place Redis answered at the join (it
    orders joins made in the same millisecond)."""

    sku: str
    pool: str
    customer_id: str
    quantity: int
    joined_at: datetime
    position: int
    state: JoinState = "waiting"
    left_at: datetime | None = None


def join_id(sku: str, customer_id: str, joined_at: datetime) -> str:
    """The document id of a join: the SKU, the customer and the join's millisecond."""
    joined_ms = int(stored_time(joined_at).timestamp() * 1000)
    return f"{sku}|{customer_id}|{joined_ms}"


def _document(join: WaitlistJoin) -> Document:
    return {
        "_id": join_id(join.sku, join.customer_id, join.joined_at),
        "sku": join.sku,
        "pool": join.pool,
        "customer_id": join.customer_id,
        "quantity": join.quantity,
        "joined_at": stored_time(join.joined_at),
        "position": join.position,
        "state": join.state,
        "left_at": None if join.left_at is None else stored_time(join.left_at),
    }


def _join(document: Document) -> WaitlistJoin:
    left_at = document.get("left_at")
    return WaitlistJoin(
        sku=document["sku"],
        pool=document["pool"],
        customer_id=document["customer_id"],
        quantity=document["quantity"],
        joined_at=as_utc(document["joined_at"]),
        position=document["position"],
        state=document["state"],
        left_at=None if left_at is None else as_utc(left_at),
    )


class WaitlistJoins:
    """The `waitlist_joins` collection: one document per join, by its `_id`."""

    def __init__(self, db: Database) -> None:
        self.collection = db["waitlist_joins"]

    async def record(self, pool: str, state: WaiterState) -> WaitlistJoin:
        """Record the new join Redis answered (`state.created`); recorded already: as it is."""
        join = WaitlistJoin(
            sku=state.sku,
            pool=pool,
            customer_id=state.customer_id,
            quantity=state.quantity,
            joined_at=state.joined_at,
            position=state.position,
        )
        async with storage_errors():
            # A duplicate: a retried record of the same join.
            with contextlib.suppress(DuplicateKeyError):
                await self.collection.insert_one(revised(_document(join)))
        return join

    async def mark_left(self, sku: str, customer_id: str, joined_at: datetime) -> bool:
        """The join ended (left, removed, or no longer waiting); True if this call marked it."""

        def change(current: Document | None) -> Write[bool]:
            if current is None or current["state"] != "waiting":
                return Write(None, False)
            left = {**_document(_join(current)), "state": "left", "left_at": utc_now()}
            return Write(left, True)

        key = {"_id": join_id(sku, customer_id, joined_at)}
        return await read_modify_replace(self.collection, key, change)

    async def close(self, sku: str, joined_before: datetime) -> int:
        """Every waiting join of the SKU made up to `joined_before` is marked left (the list
        was closed); how many this call marked."""
        async with storage_errors():
            cursor = self.collection.find({"sku": sku, "state": "waiting"})
            documents = await cursor.to_list()
        marked = 0
        for document in documents:
            join = _join(document)
            if join.joined_at <= joined_before:
                marked += await self.mark_left(sku, join.customer_id, join.joined_at)
        return marked

    async def waiting_joins(self, sku: str) -> builtins.list[WaitlistJoin]:
        """The SKU's joins still waiting, in line order (by joined_at, then the place answered),
        one per customer: their latest (an older one still waiting missed its "left" mark)."""
        async with storage_errors():
            documents = await self.collection.find({"sku": sku, "state": "waiting"}).to_list()
        latest: dict[str, WaitlistJoin] = {}
        for join in map(_join, documents):
            known = latest.get(join.customer_id)
            if known is None or known.joined_at < join.joined_at:
                latest[join.customer_id] = join
        return sorted(latest.values(), key=lambda join: (join.joined_at, join.position))

    async def joins_of(self, sku: str, customer_id: str) -> builtins.list[WaitlistJoin]:
        """Every join of a customer to a SKU's list, oldest first (the history kept)."""
        async with storage_errors():
            found = self.collection.find({"sku": sku, "customer_id": customer_id})
            documents = await found.to_list()
        return sorted(map(_join, documents), key=lambda join: join.joined_at)
