"""An entry of a pool's outbox list (the waiting-list scripts RPUSH them) as a typed value:
`<seq>|<at ms>|<type>|<reservation id>|<sku>|<quantity>|<expires ms>|<customer id>`, the
customer id last since it may itself hold a `|`."""

from __future__ import annotations

from domain.waitlist_events import MalformedOutboxEntry, OfferEvent, OutboxEntry

FIELDS = 8


def decode(raw: bytes | str) -> OutboxEntry:
    """The entry, or MalformedOutboxEntry saying what is wrong with the text."""
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise MalformedOutboxEntry(f"outbox entry is not UTF-8: {raw!r}") from None
    parts = text.split("|", FIELDS - 1)
    if len(parts) != FIELDS:
        raise MalformedOutboxEntry(f"outbox entry has {len(parts)} of {FIELDS} fields: {text!r}")
    seq, at_ms, kind, reservation_id, sku, quantity, expires_ms, customer_id = parts
    try:
        entry = OutboxEntry(
            seq=_whole(seq),
            at_ms=_whole(at_ms),
            kind=OfferEvent(kind),
            reservation_id=reservation_id,
            sku=sku,
            quantity=_whole(quantity),
            expires_ms=_whole(expires_ms),
            customer_id=customer_id,
        )
    except ValueError as exc:
        raise MalformedOutboxEntry(f"outbox entry {text!r}: {exc}") from None
    if not (entry.pool and sku and customer_id and entry.quantity > 0):
        raise MalformedOutboxEntry(
            f"outbox entry lacks a pool, SKU, customer or quantity: {text!r}"
        )
    return entry


def _whole(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"{text!r} is not a whole number")
    return int(text)
