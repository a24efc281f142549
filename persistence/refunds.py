"""Refunds that arrived before their order: Stripe delivers in any order, so a `charge.refunded`
may come before the `checkout.session.completed` it refunds. It waits here, keyed by payment
intent, and the order takes it when it is recorded."""

from __future__ import annotations

import contextlib

from pymongo.errors import DuplicateKeyError

from persistence.mongo import Database, storage_errors, utc_now


class PendingRefunds:
    """The `pending_refunds` collection, unique by payment intent."""

    def __init__(self, db: Database) -> None:
        self.collection = db["pending_refunds"]

    async def add(self, payment_intent: str) -> None:
        async with storage_errors():
            with contextlib.suppress(DuplicateKeyError):  # already waiting
                await self.collection.insert_one(
                    {"payment_intent": payment_intent, "received_at": utc_now()}
                )

    async def exists(self, payment_intent: str) -> bool:
        async with storage_errors():
            found = await self.collection.find_one({"payment_intent": payment_intent})
        return found is not None
