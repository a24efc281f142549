"""What the waiting list tells the shop: an offer made or lapsed, as the Redis outbox keeps it
(`OutboxEntry`) and as the shop receives it (`shop_event`, signed by `signature_header`)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from domain.products import utc_text


class OfferEvent(StrEnum):
    """The kinds of outbox entry; the shop sees them as `waitlist.<kind>`."""

    OFFER_CREATED = "offer_created"
    OFFER_LAPSED = "offer_lapsed"


class MalformedOutboxEntry(ValueError):
    """An outbox entry that is not `<seq>|<at ms>|<type>|<id>|<sku>|<qty>|<expires ms>|<cust>`."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One entry of a pool's Redis outbox: an offer made or lapsed, in the pool's order."""

    seq: int  # the pool's own counter: the order within the pool
    at_ms: int  # Redis TIME (ms) when it happened
    kind: OfferEvent
    reservation_id: str  # "<pool>.<token>"
    sku: str
    quantity: int
    expires_ms: int  # the offer's expiry, Redis TIME (ms)
    customer_id: str

    @property
    def pool(self) -> str:
        return self.reservation_id.rpartition(".")[0]

    @property
    def event_id(self) -> str:
        return event_id(self.kind, self.reservation_id)

    @property
    def event_type(self) -> str:
        return f"waitlist.{self.kind.value}"


def event_id(kind: OfferEvent, reservation_id: str) -> str:
    """The shop event's id, the same every time the same entry is moved: an offer is created
    once and lapses at most once, so (type, reservation id) names one event."""
    digest = hashlib.sha256(f"{kind.value}|{reservation_id}".encode()).hexdigest()
    return "evt_" + digest[:24]


def shop_event(entry: OutboxEntry) -> dict[str, Any]:
    """The JSON body the shop receives (docs/api.md, *Shop webhooks*)."""
    return {
        "id": entry.event_id,
        "type": entry.event_type,
        "created": entry.at_ms // 1000,
        "data": {
            "sku": entry.sku,
            "customer_id": entry.customer_id,
            "reservation_id": entry.reservation_id,
            "quantity": entry.quantity,
            "expires_at": utc_text(datetime.fromtimestamp(entry.expires_ms / 1000, UTC)),
        },
    }


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """`Reservation-Signature`'s value, signed as Stripe signs: `t=<unix seconds>,v1=<hex
    HMAC-SHA256 of "<t>." + body under the secret>`."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
