"""The sequential model's state of one pool: immutable, hashable, cheap to hash.

The checker memoises (linearized set, state) pairs, so every state it reaches is hashed, and
two states reached by different orders must compare equal when they are the same. A state
holds every reservation of the pool, so hashing it from scratch would cost time linear in the
history at each step; instead its hash is kept as a sum of its parts' hashes (modulo 2**64),
updated by each change in constant time. Equality compares the parts themselves.

A change never mutates a state: it copies the few small dicts it touches (a few hundred
entries at most per pool in a run), which is cheaper in Python than a persistent map.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

HELD = "held"
COMMITTED = "committed"
RELEASED = "released"
# Released, and a late payment of it was refused as oversold: every later payment of it is
# refused too (commit.lua's late = FINAL). Read as `released`.
REFUSED = "refused"

SHOWN = {HELD: HELD, COMMITTED: COMMITTED, RELEASED: RELEASED, REFUSED: RELEASED}
UNKNOWN_SESSION = "?"  # a checkout that may have happened made a session nobody saw

MASK = (1 << 64) - 1
K = TypeVar("K")

Items = tuple[tuple[str, int], ...]
KeyScope = tuple[str | None, str]  # (customer id, Idempotency-Key)


@dataclass(frozen=True, slots=True)
class Reservation:
    status: str
    items: Items  # one line per SKU, summed, first-seen order
    customer: str | None
    session: str | None = None  # the Checkout Session made for it; UNKNOWN_SESSION: unseen


class State:
    """Counters per SKU (by the pool's SKU index), reservations by id, idempotency keys, and
    what each customer holds: `usage` (units held or bought, per SKU) and `holds` (live holds).
    `usage` and `holds` follow from the reservations, so hash and equality skip them."""

    __slots__ = ("_hash", "holds", "keys", "reservations", "reserved", "sold", "usage")

    def __init__(
        self,
        reserved: tuple[int, ...],
        sold: tuple[int, ...],
        reservations: Mapping[str, Reservation],
        keys: Mapping[KeyScope, str],
        usage: Mapping[tuple[str, str], int],
        holds: Mapping[str, int],
        parts_hash: int | None = None,
    ) -> None:
        self.reserved = reserved
        self.sold = sold
        self.reservations = reservations
        self.keys = keys
        self.usage = usage
        self.holds = holds
        if parts_hash is None:
            parts_hash = sum(hash(entry) for entry in reservations.items())
            parts_hash += sum(hash(("key", entry)) for entry in keys.items())
        self._hash = parts_hash & MASK

    @classmethod
    def empty(cls, skus: int) -> State:
        return cls((0,) * skus, (0,) * skus, {}, {}, {}, {})

    def __hash__(self) -> int:
        return hash((self._hash, self.reserved, self.sold))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return (
            self._hash == other._hash
            and self.reserved == other.reserved
            and self.sold == other.sold
            and self.reservations == other.reservations
            and self.keys == other.keys
        )

    def __repr__(self) -> str:
        return f"State(reserved={self.reserved}, sold={self.sold}, {len(self.reservations)} res)"

    def changed(
        self,
        *,
        reserved: tuple[int, ...] | None = None,
        sold: tuple[int, ...] | None = None,
        put: Mapping[str, Reservation] | None = None,
        drop: str | None = None,
        bind: Mapping[KeyScope, str] | None = None,
        usage: Mapping[tuple[str, str], int] | None = None,
        holds: Mapping[str, int] | None = None,
    ) -> State:
        """A new state: `put` reservations (replacing by id), `drop` one id, `bind` keys;
        `usage` and `holds` are deltas."""
        parts = self._hash
        reservations = self.reservations
        if drop is not None or put:
            reservations = dict(reservations)
            if drop is not None:
                parts -= hash((drop, reservations.pop(drop)))
            for rid, reservation in (put or {}).items():
                if rid in reservations:
                    parts -= hash((rid, reservations[rid]))
                reservations[rid] = reservation
                parts += hash((rid, reservation))
        keys = self.keys
        if bind:
            keys = dict(keys)
            for scope, rid in bind.items():
                if scope in keys:
                    parts -= hash(("key", (scope, keys[scope])))
                keys[scope] = rid
                parts += hash(("key", (scope, rid)))
        return State(
            self.reserved if reserved is None else reserved,
            self.sold if sold is None else sold,
            reservations,
            keys,
            _added(self.usage, usage),
            _added(self.holds, holds),
            parts,
        )


def _added(counts: Mapping[K, int], deltas: Mapping[K, int] | None) -> Mapping[K, int]:
    if not deltas:
        return counts
    result = dict(counts)
    for name, delta in deltas.items():
        value = result.get(name, 0) + delta
        if value:
            result[name] = value
        else:
            result.pop(name, None)
    return result
