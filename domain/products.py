"""A catalog product as the service takes and gives it: what a write sets, what a read answers.

The catalog (reservation/usecases/catalog.py) takes and returns these; the HTTP layer turns its
bodies into them and them into its answers (reservation/api/products.py), so the catalog never
sees an HTTP schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from domain import errors
from domain.rules import (
    DEFAULT_ADMISSION_SECONDS,
    MAX_ACTIVE_ADMISSIONS,
    MAX_ADMISSION_SECONDS,
    MAX_ADMIT_PER_SECOND,
)


@dataclass(frozen=True, slots=True)
class WaitingRoom:
    """A SKU's waiting room: buyers queue, and are admitted to hold at this rate (a token
    bucket of one admission), never more than `max_active` admissions live at once; an
    admission lasts `admission_seconds` unless a hold uses it first."""

    admit_per_second: int
    max_active: int
    admission_seconds: int = DEFAULT_ADMISSION_SECONDS

    def __post_init__(self) -> None:
        for name, most in (
            ("admit_per_second", MAX_ADMIT_PER_SECOND),
            ("max_active", MAX_ACTIVE_ADMISSIONS),
            ("admission_seconds", MAX_ADMISSION_SECONDS),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
                raise errors.InvalidRequest(
                    f"waiting_room.{name} must be an integer from 1 to {most}",
                    field=f"waiting_room.{name}",
                )


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """What a catalog write sets of a product (a PUT replaces the product whole)."""

    name: str
    price: int  # minor units of `currency`
    currency: str
    stock: int
    pool: str | None = None  # None: the product's current pool, or the default one
    max_per_customer: int | None = None  # None: no limit
    sale_starts_at: datetime | None = None  # None: on sale from the start
    sale_ends_at: datetime | None = None  # None: on sale with no end
    waiting_room: WaitingRoom | None = None  # None: no room, buyers hold directly


@dataclass(frozen=True, slots=True)
class StockedProduct:
    """A catalog product with its live counts: what a product read answers. `spec` is the
    product as recorded (its `pool` always set here, its `stock` the units on hand)."""

    sku: str
    spec: ProductSpec
    reserved: int
    sold: int
    available: int
    on_sale: bool = True  # inside its sale window now, by Redis's clock
    waitlist: int = 0  # buyers in its waiting list's line


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_text(value: datetime) -> str:
    """A time as the API writes it: ISO 8601 in UTC with milliseconds and a `Z`."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sale_window(
    starts_at: datetime | None, ends_at: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """A sale window as stored: each bound in UTC to the millisecond (Redis compares ms); an
    aware time only, and a start before the end (InvalidRequest otherwise)."""
    bounds = []
    for name, at in (("sale_starts_at", starts_at), ("sale_ends_at", ends_at)):
        if at is not None and (not isinstance(at, datetime) or at.utcoffset() is None):
            raise errors.InvalidRequest(f"{name} must be a time with its offset", field=name)
        if at is not None and at < EPOCH:
            # Redis keeps the bounds as ms since the epoch, digits only.
            raise errors.InvalidRequest(f"{name} must be after 1970-01-01", field=name)
        bounds.append(
            None
            if at is None
            else at.astimezone(UTC).replace(microsecond=at.microsecond // 1000 * 1000)
        )
    starts, ends = bounds
    if starts is not None and ends is not None and starts >= ends:
        raise errors.InvalidRequest(
            "sale_starts_at must be before sale_ends_at", field="sale_starts_at"
        )
    return starts, ends
