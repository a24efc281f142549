"""What a Checkout Session carries about its reservation, so a payment can always be matched.

The cart rides in the session's metadata ("sku=qty@unit_amount,…", split over cart_0, cart_1, …
as Stripe caps a metadata value at 500 characters): an order can be recorded, and a late
payment committed, even when Redis has lost the reservation.

The metadata is sealed: `seal` is an HMAC-SHA256, keyed by RESERVATION_SESSION_SECRET, of the
reservation id, the customer id and the cart. Anyone on the same Stripe account (a staging
deployment, another shop, `stripe trigger`) can make a session with metadata of this shape;
only this service can seal it. The seal needs no storage, so a session is known as ours after
Redis was lost and after a process died between Stripe and MongoDB.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from domain.errors import InvalidPayload
from domain.rules import MAX_AMOUNT, MAX_CART_LINES, MAX_QUANTITY, NAME_PATTERN
from reservation.core.cart import CUSTOMER_PATTERN

VALUE_LIMIT = 500  # Stripe's limit of one metadata value
SEAL = "seal"
SEAL_VERSION = "v1"
# Every cart line fits in one value, and a cart of MAX_CART_LINES lines in this many.
MAX_CHUNKS = 50
MAX_RESERVATION_ID = 100
# One line as encode writes it: digits without sign or leading zeros, bounded in length.
LINE = re.compile(r"([^=@,]{1,64})=([1-9][0-9]{0,6})@(0|[1-9][0-9]{0,7})")


@dataclass(frozen=True, slots=True)
class PaidLine:
    sku: str
    quantity: int
    unit_amount: int


@dataclass(frozen=True, slots=True)
class SessionCart:
    reservation_id: str
    lines: tuple[PaidLine, ...]
    customer_id: str | None

    @property
    def amount_total(self) -> int:
        """What the cart costs at the prices it was checked out at."""
        return sum(line.quantity * line.unit_amount for line in self.lines)


def encode(
    reservation_id: str, lines: Sequence[PaidLine], customer_id: str | None, secret: str
) -> dict[str, str]:
    """The metadata of a new session, sealed with `secret`."""
    metadata = {"reservation_id": reservation_id}
    if customer_id:
        metadata["customer_id"] = customer_id
    chunk: list[str] = []
    chunks: list[str] = []
    for line in lines:
        part = f"{line.sku}={line.quantity}@{line.unit_amount}"
        if chunk and len(",".join([*chunk, part])) > VALUE_LIMIT:
            chunks.append(",".join(chunk))
            chunk = []
        chunk.append(part)
    chunks.append(",".join(chunk))
    metadata.update((f"cart_{index}", value) for index, value in enumerate(chunks))
    metadata[SEAL] = seal(metadata, secret)
    return metadata


def _sealed_text(metadata: Mapping[str, object]) -> bytes:
    """What the seal covers: the reservation, the customer and every cart value, each field
    length-prefixed so that no two metadata give the same text."""
    fields = [SEAL_VERSION, metadata.get("reservation_id"), metadata.get("customer_id") or ""]
    index = 0
    while index < MAX_CHUNKS and isinstance(value := metadata.get(f"cart_{index}"), str):
        fields.append(value)
        index += 1
    parts = [str(value) if isinstance(value, str) else "" for value in fields]
    return "".join(f"{len(part)}:{part}" for part in parts).encode()


def seal(metadata: Mapping[str, object], secret: str) -> str:
    """The seal of `metadata` under `secret` (hex)."""
    return hmac.new(secret.encode(), _sealed_text(metadata), hashlib.sha256).hexdigest()


def is_sealed(metadata: Mapping[str, object], secrets: Sequence[str]) -> bool:
    """Whether the metadata carries a seal made with one of `secrets`."""
    given = metadata.get(SEAL)
    if not isinstance(given, str) or not given.isascii():
        return False
    return any(hmac.compare_digest(given, seal(metadata, secret)) for secret in secrets)


def carries_cart(metadata: Mapping[str, object]) -> bool:
    """Whether the metadata has this service's shape (a reservation and a cart), valid or not."""
    return "reservation_id" in metadata and "cart_0" in metadata


def decode(metadata: Mapping[str, object]) -> SessionCart:
    """The reservation and cart of a session, every field checked as `encode` writes it:
    InvalidPayload when one is not."""
    reservation_id = metadata.get("reservation_id")
    if (
        not isinstance(reservation_id, str)
        or not 0 < len(reservation_id) <= MAX_RESERVATION_ID
        or not reservation_id.isascii()
    ):
        raise InvalidPayload("the Checkout Session carries no reservation_id in its metadata")
    lines: list[PaidLine] = []
    index = 0
    while isinstance(value := metadata.get(f"cart_{index}"), str):
        if index >= MAX_CHUNKS or len(value) > VALUE_LIMIT:
            raise InvalidPayload("the cart in the metadata is longer than a cart can be")
        lines += [_line(part) for part in value.split(",")]
        index += 1
    if not lines:
        raise InvalidPayload("the Checkout Session carries no cart in its metadata")
    if len(lines) > MAX_CART_LINES:
        raise InvalidPayload(f"the cart in the metadata has more than {MAX_CART_LINES} lines")
    if len({line.sku for line in lines}) != len(lines):
        raise InvalidPayload("the cart in the metadata names a SKU twice")
    cart_total = sum(line.quantity * line.unit_amount for line in lines)
    if cart_total > MAX_AMOUNT:
        raise InvalidPayload("the cart in the metadata costs more than one payment may")
    customer = metadata.get("customer_id")
    if customer is not None and not (
        isinstance(customer, str) and CUSTOMER_PATTERN.fullmatch(customer)
    ):
        raise InvalidPayload("the customer_id in the metadata is not a customer id")
    return SessionCart(reservation_id, tuple(lines), customer)


def _line(part: str) -> PaidLine:
    match = LINE.fullmatch(part)
    if match is None or not NAME_PATTERN.fullmatch(match[1]) or int(match[2]) > MAX_QUANTITY:
        raise InvalidPayload(f"unreadable cart line in metadata: {part[:80]!r}")
    return PaidLine(match[1], int(match[2]), int(match[3]))
