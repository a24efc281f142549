"""What the pool scripts share, on the Python side of _pool.lua: the cart format, the reply
about one reservation (`record_reply`), a SKU's counters (`counters`), and the refusals every
script may answer ({'bad_request', argument}; {'not_found'} and {'fenced'} about one
reservation). Each script's own reply is decoded in the module beside it (reserve.py beside
reserve.lua), with these."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain import errors
from domain.products import WaitingRoom, utc_text
from domain.reservations import (
    CartLine,
    Reservation,
    ReservationStatus,
    StockLevel,
    from_epoch_ms,
)


def text(value: Any) -> str:
    """A reply's element as text (redis-py answers bytes unless told to decode)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def encode_cart(lines: Iterable[CartLine]) -> str:
    """The scripts' cart format: "sku=qty,sku=qty"."""
    return ",".join(f"{line.sku}={line.quantity}" for line in lines)


def decode_cart(encoded: str) -> tuple[CartLine, ...]:
    """A cart in the scripts' format as cart lines (empty parts skipped)."""
    lines = []
    for part in encoded.split(","):
        if part:
            sku, _, quantity = part.partition("=")
            lines.append(CartLine(sku, int(quantity)))
    return tuple(lines)


@dataclass(frozen=True, slots=True)
class NoCounters:
    """Redis has no counters for a SKU it should have ({'unknown_sku', sku} of reserve,
    {'unknown_stock', sku} of commit, {'missing'} of set_stock): it lost them, or never had
    them. The core decides which, and what to answer."""

    sku: str


def refused_argument(reply: Any) -> str | None:
    """The argument a script refused ({'bad_request', argument}, having touched nothing);
    None for any other reply."""
    if isinstance(reply, list) and len(reply) == 2 and text(reply[0]) == "bad_request":
        return text(reply[1])
    return None


def outcome(reply: Sequence[Any], reservation_id: str, pool: str) -> str:
    """The first word of a reply about one reservation. {'not_found'} is NotFound;
    {'fenced'} (the pool is being reconciled) is StorageUnavailable, so the caller retries."""
    word = text(reply[0])
    if word == "not_found":
        raise errors.NotFound("no such reservation", reservation_id=reservation_id)
    if word == "fenced":
        raise errors.StorageUnavailable(
            "the pool is being reconciled: retry in a moment", backend="redis", pool=pool
        )
    return word


def reservation(reply: Sequence[Any], reservation_id: str, pool: str) -> Reservation:
    """record_reply's {outcome, status, items, customer, expires_at_ms, created_at_ms, late}
    as the reservation it describes."""
    _, status, items, customer, expires_at, created_at, late = reply
    return Reservation(
        id=reservation_id,
        pool=pool,
        status=ReservationStatus(text(status)),
        items=decode_cart(text(items)),
        customer_id=text(customer) or None,
        expires_at=from_epoch_ms(int(expires_at)),
        created_at=from_epoch_ms(int(created_at)),
        committed_late=text(late) == "1",
    )


def stock_level(
    sku: str, pool: str, counters: Iterable[Any], on_sale: Any = b"1", waiting: Any = None
) -> StockLevel:
    """A SKU's {total, reserved, sold, limit} (limit 0: none), whether it is on sale (a
    script's '1'/'0') and the entries in its waiting list's line, as its stock level."""
    total, reserved, sold, limit = (int(value) for value in counters)
    on = text(on_sale) == "1"
    return StockLevel(sku, pool, total, reserved, sold, limit or None, on, int(waiting or 0))


def _ms(at: datetime | None) -> str:
    return "" if at is None else str(int(at.timestamp() * 1000))


def encode_sale(starts_at: datetime | None, ends_at: datetime | None) -> str:
    """The scripts' sale window (parse_sale in _pool.lua): "<starts>|<ends>|<starts_at>|
    <ends_at>", ms then the API's text, an open side empty; '' for a window open both ways."""
    if starts_at is None and ends_at is None:
        return ""
    texts = ("" if at is None else utc_text(at) for at in (starts_at, ends_at))
    return "|".join((_ms(starts_at), _ms(ends_at), *texts))


def optional_ms(value: Any) -> datetime | None:
    """A script's time in ms as text, '' (or nothing) for none."""
    raw = "" if value is None else text(value)
    return from_epoch_ms(int(raw)) if raw else None


def decode_sale(value: Any) -> tuple[datetime | None, datetime | None]:
    """A sale window as the scripts keep it (None or '': open both ways)."""
    raw = "" if value is None else text(value)
    starts, ends, *_ = [*raw.split("|"), "", ""]
    return optional_ms(starts), optional_ms(ends)


def encode_room(room: WaitingRoom | None) -> str:
    """The scripts' waiting room (parse_room in _pool.lua): "<admit_per_second>|<max_active>|
    <admission_seconds>"; '' for none."""
    if room is None:
        return ""
    return f"{room.admit_per_second}|{room.max_active}|{room.admission_seconds}"


def decode_room(value: Any) -> WaitingRoom | None:
    """A waiting room as the scripts keep it (None or '': none)."""
    raw = "" if value is None else text(value)
    if not raw:
        return None
    admit_per_second, max_active, admission_seconds = (int(part) for part in raw.split("|"))
    return WaitingRoom(admit_per_second, max_active, admission_seconds)
