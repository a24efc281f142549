"""Values the core hands out: cart lines, reservations, stock levels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from domain.products import WaitingRoom


class ReservationStatus(StrEnum):
    HELD = "held"
    AWAITING_PAYMENT = "awaiting_payment"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class CartLine:
    """One line of a cart: how many units of one SKU."""

    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    pool: str
    status: ReservationStatus
    items: tuple[CartLine, ...]
    customer_id: str | None
    expires_at: datetime
    created_at: datetime
    committed_late: bool = False


@dataclass(frozen=True, slots=True)
class StockLevel:
    sku: str
    pool: str
    total: int
    reserved: int
    sold: int
    max_per_customer: int | None
    on_sale: bool = True  # inside the SKU's sale window, by Redis's clock when read
    waiting: int = 0  # buyers in the SKU's waiting list's line

    @property
    def available(self) -> int:
        """What the public may hold now: nothing while someone waits in the SKU's line (the
        units that came back and do not fit its head are kept for it)."""
        if self.waiting > 0:
            return 0
        return max(self.total - self.reserved - self.sold, 0)


@dataclass(frozen=True, slots=True)
class Listed:
    """A SKU's live counters and the catalog entry kept beside them (None: not there)."""

    level: StockLevel
    entry: str | None
    sale: tuple[datetime | None, datetime | None] = (None, None)  # the sale window kept beside
    room: WaitingRoom | None = None  # the waiting room kept beside (None: none)


def from_epoch_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)
