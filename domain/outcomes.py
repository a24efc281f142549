"""Typed answers of the core's operations; raw script replies never leave the decoder beside
each script (reservation/lua/<script>.py).

The refusals a buyer can meet in normal traffic (out of stock, over the limit, oversold) are
results, not exceptions, so a caller handles them where it decides what to do; `error()` turns
one into the matching ReservationError when the caller wants to answer with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from domain import errors
from domain.products import utc_text
from domain.reservations import Reservation


@dataclass(frozen=True, slots=True)
class Held:
    """The cart is held. `created` is False when an existing reservation was returned."""

    reservation: Reservation
    created: bool = True


@dataclass(frozen=True, slots=True)
class OutOfStock:
    sku: str
    requested: int
    available: int
    # The SKU's sale has an end: its refusal must not be remembered past it (core/soldout.py).
    windowed: bool = field(default=False, compare=False)

    def error(self) -> errors.InsufficientStock:
        return errors.InsufficientStock(
            f"only {self.available} of {self.sku} available, {self.requested} requested",
            sku=self.sku,
            requested=self.requested,
            available=self.available,
        )


@dataclass(frozen=True, slots=True)
class OverCustomerLimit:
    sku: str
    limit: int
    already: int

    def error(self) -> errors.CustomerLimitExceeded:
        return errors.CustomerLimitExceeded(
            f"at most {self.limit} of {self.sku} per reservation and per customer",
            sku=self.sku,
            limit=self.limit,
        )


@dataclass(frozen=True, slots=True)
class CustomerRequired:
    """A SKU with a per-customer limit, a cart without a customer id, and the service set to
    refuse those (RESERVATION_REQUIRE_CUSTOMER)."""

    sku: str

    def error(self) -> errors.CustomerRequired:
        return errors.CustomerRequired(
            f"{self.sku} is limited per customer: reserve it with a customer_id",
            sku=self.sku,
            field="customer_id",
        )


@dataclass(frozen=True, slots=True)
class OverHoldCap:
    """The customer already has `limit` live holds (held, not paid) in the cart's pool."""

    limit: int
    held: int

    def error(self) -> errors.HoldCapReached:
        return errors.HoldCapReached(
            f"at most {self.limit} live holds per customer: pay for or release one first",
            limit=self.limit,
            held=self.held,
        )


@dataclass(frozen=True, slots=True)
class NotOnSale:
    """A line's SKU is outside its sale window (None: open on that side), by Redis's clock."""

    sku: str
    starts_at: datetime | None
    ends_at: datetime | None

    def window(self) -> tuple[datetime | None, datetime | None]:
        return self.starts_at, self.ends_at

    def error(self) -> errors.NotOnSale:
        starts, ends = (
            None if at is None else utc_text(at) for at in (self.starts_at, self.ends_at)
        )
        return errors.NotOnSale(
            f"{self.sku} is not on sale now", sku=self.sku, starts_at=starts, ends_at=ends
        )


@dataclass(frozen=True, slots=True)
class AdmissionRefused:
    """A line's SKU has a waiting room and the admission token does not let this cart hold it
    (`reason`: required, invalid or used): nothing was held, and the token is as it was."""

    sku: str
    reason: Literal["required", "invalid", "used"]

    def error(self) -> errors.ReservationError:
        if self.reason == "required":
            return errors.AdmissionRequired(
                f"{self.sku} has a waiting room: send the admission_token it gave you",
                sku=self.sku,
            )
        if self.reason == "used":
            return errors.AdmissionUsed("the admission token made a hold already", sku=self.sku)
        return errors.AdmissionInvalid(
            f"the admission token is not a live admission of {self.sku} for this buyer",
            sku=self.sku,
        )


ReserveOutcome = (
    Held
    | OutOfStock
    | OverCustomerLimit
    | CustomerRequired
    | OverHoldCap
    | NotOnSale
    | AdmissionRefused
)


@dataclass(frozen=True, slots=True)
class Released:
    """Units are back (`changed`), or the reservation had already lapsed or been released."""

    reservation: Reservation
    changed: bool


@dataclass(frozen=True, slots=True)
class ReleaseRefused:
    """The reservation is committed: paid units are never released."""

    reservation: Reservation

    def error(self) -> errors.AlreadyCommitted:
        return errors.AlreadyCommitted(
            "the reservation is paid for and cannot be released",
            reservation_id=self.reservation.id,
        )


ReleaseOutcome = Released | ReleaseRefused


@dataclass(frozen=True, slots=True)
class Committed:
    """Held units are sold. `repeated` when this commit had already happened."""

    reservation: Reservation
    repeated: bool = False


@dataclass(frozen=True, slots=True)
class CommittedLate:
    """The hold had lapsed, but free stock covered the paid cart."""

    reservation: Reservation


@dataclass(frozen=True, slots=True)
class Oversold:
    """The hold had lapsed and the stock is gone: nothing changed, the payment is refunded."""

    reservation_id: str
    sku: str
    requested: int
    available: int


CommitOutcome = Committed | CommittedLate | Oversold


@dataclass(frozen=True, slots=True)
class Extended:
    reservation: Reservation


@dataclass(frozen=True, slots=True)
class NotExtended:
    """Only a live hold can wait for a delayed payment; this one is committed or gone."""

    reservation: Reservation


ExtendOutcome = Extended | NotExtended


# What reconcile's word that an order is paid (settle_paid) did to the reservation's record:
# "settled" it changed, "unchanged" it was committed already, "oversold" its payment was
# refused for good (the order sells nothing), "unknown" the id is not one of this service.
SettleOutcome = Literal["settled", "unchanged", "oversold", "unknown"]
SETTLED_BY_SCRIPT: tuple[SettleOutcome, ...] = ("settled", "unchanged", "oversold")


@dataclass(frozen=True, slots=True)
class Admitted:
    left: int  # requests still admitted in the window now


@dataclass(frozen=True, slots=True)
class Limited:
    retry_after_ms: int  # until one more request is admitted

    @property
    def retry_after(self) -> int:
        """Whole seconds for `Retry-After`: rounded up, at least 1."""
        return max(1, math.ceil(self.retry_after_ms / 1000))


@dataclass(frozen=True, slots=True)
class BelowCommitted:
    """Refused: the new total is below what is held plus sold (nothing changed)."""

    sku: str
    reserved: int
    sold: int

    def error(self) -> errors.StockBelowCommitted:
        return errors.StockBelowCommitted(
            f"stock of {self.sku} cannot go below reserved + sold",
            sku=self.sku,
            reserved=self.reserved,
            sold=self.sold,
        )
