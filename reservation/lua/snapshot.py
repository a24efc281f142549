"""The reply of snapshot.lua: the counters and catalog entry of some SKUs of a pool."""

from __future__ import annotations

from typing import Any

from domain.reservations import Listed
from reservation.lua._pool import decode_room, decode_sale, stock_level, text

# per SKU: sku, total, reserved, sold, limit, catalog entry, sale window, waiting room, on_sale,
# entries in its waiting list's line
FIELDS = 10


def decode(reply: Any, pool: str) -> list[Listed]:
    """The flat {sku, total, reserved, sold, limit, entry, sale, room, on_sale, waiting, ...}
    as listed SKUs; a SKU not in the pool (total -1) is left out."""
    found = []
    for start in range(0, len(reply), FIELDS):
        sku, total, reserved, sold, limit, entry, sale, room, on_sale, waiting = reply[
            start : start + FIELDS
        ]
        if int(total) >= 0:
            counts = (total, reserved, sold, limit)
            level = stock_level(text(sku), pool, counts, on_sale, waiting)
            entry_text = None if entry is None else text(entry)
            found.append(Listed(level, entry_text, decode_sale(sale), decode_room(room)))
    return found
