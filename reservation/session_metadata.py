"""What a Checkout Session carries about its reservation, so a payment can always be matched.

The cart rides in the session's metadata ("sku=qty@unit_amount,…", split over cart_0, cart_1, …
as Stripe caps a metadata value at 500 characters): an order can be recorded, and a late
payment committed, even when Redis has lost the reservation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from domain.errors import InvalidPayload

VALUE_LIMIT = 500


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


def encode(
    reservation_id: str, lines: Sequence[PaidLine], customer_id: str | None
) -> dict[str, str]:
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
    return metadata


def decode(metadata: Mapping[str, object]) -> SessionCart:
    """The reservation and cart of a session; InvalidPayload when they are not there."""
    reservation_id = metadata.get("reservation_id")
    if not isinstance(reservation_id, str) or not reservation_id:
        raise InvalidPayload("the Checkout Session carries no reservation_id in its metadata")
    lines = []
    index = 0
    while isinstance(value := metadata.get(f"cart_{index}"), str):
        for part in filter(None, value.split(",")):
            try:
                sku, _, rest = part.partition("=")
                quantity, _, unit_amount = rest.partition("@")
                lines.append(PaidLine(sku, int(quantity), int(unit_amount)))
            except ValueError:
                raise InvalidPayload(f"unreadable cart line in metadata: {part!r}") from None
        index += 1
    if not lines:
        raise InvalidPayload("the Checkout Session carries no cart in its metadata")
    customer = metadata.get("customer_id")
    return SessionCart(
        reservation_id, tuple(lines), customer if isinstance(customer, str) else None
    )
