"""The verifier's look at the waiting lists of a sale (`python -m loadtests.verify --waitlist
--shop-events FILE`), from what the service recorded: the joins (MongoDB `waitlist_joins`, with
each entry's place in line from the pool's Redis `waitlist` hash), the offers made and lapsed
(MongoDB `shop_events`, moved there from the pools' Redis outboxes), every reservation record
Redis keeps (its SKUs, customer, creation, expiry, status) and what the shop's receiver got
(loadtests/shop_receiver.py's record). All times are Redis `TIME` (ms): one clock.

The invariants, each a line of the verifier's report when broken:

- wl-order: every offer went to a customer in the SKU's line, in line order: when an offer is
  made, nobody ahead of its customer (by the line's sequence) who had joined before it (strictly
  earlier millisecond), had not been offered yet and had not left was still waiting. The line
  is strict (a head whose quantity does not fit holds the rest back), so this holds for every
  quantity; the rehearsal's waiters ask for 1.
- wl-crowd: no unit went to the public while the line was not empty: no hold that is not an
  offer (offer ids are `<pool>.wl-<22 characters>`) of the SKU was created strictly inside a
  waiter's time in line (joined_at to their offer, or to `left_at`).
- wl-double: a unit never offered to two customers at once: an offer's reservation is held for
  the event's customer and names one entry only; no customer holds two live offers of a SKU at
  once; and at every offer, the units certainly taken then (live offers, holds, sold) are at
  most the SKU's total. "Certainly": a hold counts from its creation to its expiry if it lapsed,
  for ever if it was paid for, not at all if it was given back (its release time is not kept);
  an offer until its lapse event.
- wl-events: every offer made and lapsed (every `shop_events` event, and every offer the entries
  and reservation records show) reached the shop's receiver, is `delivered` in MongoDB, and the
  receiver got each customer's events in the order they happened (by Redis time, pool, seq).

`left_at` is MongoDB's mark, written just after Redis answered the leave (or close): an offer
or a public hold within those milliseconds could be misjudged. The rehearsal's waiters leave
only when the operator closes the lines after the sale.

`waitlist_findings` is pure over what was read (tests/test_verify_waitlist.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from reservation.core.waitlist import is_offer_id

CREATED, LAPSED = "offer_created", "offer_lapsed"
FOREVER = 2**62

# Whether a reservation is an offer: the service's own test of its ids (one definition).
is_offer = is_offer_id


@dataclass(frozen=True, slots=True)
class Join:
    """A customer's entry in a SKU's line: its place (`seq`), times in epoch ms."""

    sku: str
    customer_id: str
    seq: int
    joined_ms: int
    quantity: int = 1
    left_ms: int | None = None
    status: str = ""  # the entry's status in Redis after the sale ("": unknown)
    offer_id: str = ""  # the entry's offer id in Redis (chosen at the join)


@dataclass(frozen=True, slots=True)
class ShopEvent:
    """An offer made or lapsed, as the outbox kept it."""

    event_id: str
    kind: str  # offer_created, offer_lapsed
    sku: str
    customer_id: str
    reservation_id: str
    quantity: int
    at_ms: int
    pool: str
    seq: int
    delivered: bool = True

    @property
    def order(self) -> tuple[int, str, int]:
        return (self.at_ms, self.pool, self.seq)


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation record of a SKU (one line of it): who, how many, when, how it ended."""

    reservation_id: str
    sku: str
    quantity: int
    customer_id: str | None
    created_ms: int
    expires_ms: int
    status: str  # held, awaiting_payment, committed, released, expired

    def taken(self, lapsed_ms: int | None = None) -> tuple[int, int]:
        """[from, until) in which its units were certainly taken (see the module)."""
        if self.status == "released":
            return (self.created_ms, self.created_ms)
        if self.status == "expired":
            return (self.created_ms, min(self.expires_ms, lapsed_ms or self.expires_ms))
        return (self.created_ms, FOREVER)


@dataclass
class Lines:
    """Everything the waiting-list checks read."""

    joins: list[Join]
    events: list[ShopEvent]
    holds: list[Hold]
    totals: dict[str, int]  # SKU -> total units
    received: list[tuple[str, bool]] = field(default_factory=list)  # (event id, first), arrived


@dataclass(frozen=True, slots=True)
class LineFinding:
    invariant: str  # wl-order, wl-crowd, wl-double, wl-events
    subject: str  # a SKU, or "the shop"
    detail: str


def waitlist_findings(lines: Lines) -> list[LineFinding]:
    """Every broken waiting-list invariant over what was read."""
    found: list[LineFinding] = []
    for sku in sorted({join.sku for join in lines.joins} | {e.sku for e in lines.events}):
        line = sorted((j for j in lines.joins if j.sku == sku), key=lambda j: j.seq)
        offers = sorted(
            (e for e in lines.events if e.sku == sku and e.kind == CREATED), key=lambda e: e.order
        )
        found += _order(sku, line, offers)
        found += _crowd(sku, line, offers, lines.holds)
        found += _double(sku, line, offers, lines)
    found += _events(lines)
    return found


def first_offers(offers: Sequence[ShopEvent]) -> dict[str, ShopEvent]:
    """Customer -> the first offer they got (offers in event order)."""
    found: dict[str, ShopEvent] = {}
    for offer in offers:
        found.setdefault(offer.customer_id, offer)
    return found


def _order(sku: str, line: list[Join], offers: list[ShopEvent]) -> list[LineFinding]:
    found = []
    place = {join.customer_id: index for index, join in enumerate(line)}
    first = first_offers(offers)
    for offer in offers:
        index = place.get(offer.customer_id)
        if index is None or line[index].joined_ms > offer.at_ms:
            found.append(
                LineFinding(
                    "wl-order",
                    sku,
                    f"offer {offer.reservation_id} to {offer.customer_id}, who was not in line",
                )
            )
            continue
        for ahead in line[:index]:
            if _waiting_at(ahead, first.get(ahead.customer_id), offer):
                found.append(
                    LineFinding(
                        "wl-order",
                        sku,
                        f"offer {offer.reservation_id} to {offer.customer_id} (place {index + 1})"
                        f" while {ahead.customer_id} (place {line.index(ahead) + 1}) waited ahead",
                    )
                )
                break
    return found


def _waiting_at(join: Join, offered: ShopEvent | None, offer: ShopEvent) -> bool:
    """Whether the entry was surely in line when `offer` was made: joined in an earlier
    millisecond, not offered before it (by the events' order: one script may make several
    offers in one millisecond, head first), not left by then."""
    if offered is not None and offered.order < offer.order:
        return False
    left = FOREVER if join.left_ms is None else join.left_ms
    return join.joined_ms < offer.at_ms <= left


def _left_line(join: Join, offer: ShopEvent | None) -> int:
    """When the entry left the line: its first offer, else its `left_at` (else never)."""
    ends = [FOREVER]
    if offer is not None:
        ends.append(offer.at_ms)
    if join.left_ms is not None:
        ends.append(join.left_ms)
    return min(ends)


def _crowd(
    sku: str, line: list[Join], offers: list[ShopEvent], holds: list[Hold]
) -> list[LineFinding]:
    first = first_offers(offers)
    spans = [(j.joined_ms, _left_line(j, first.get(j.customer_id)), j) for j in line]
    found = []
    for hold in sorted(holds, key=lambda h: h.created_ms):
        if hold.sku != sku or is_offer(hold.reservation_id):
            continue
        for start, end, join in spans:
            if start < hold.created_ms < end:
                found.append(
                    LineFinding(
                        "wl-crowd",
                        sku,
                        f"public hold {hold.reservation_id} created while {join.customer_id} "
                        f"waited in line (since {start} ms, until {_when(end)})",
                    )
                )
                break
    return found


def _when(ms: int) -> str:
    return "the end" if ms >= FOREVER else f"{ms} ms"


def _double(sku: str, line: list[Join], offers: list[ShopEvent], lines: Lines) -> list[LineFinding]:
    found = []
    holds = {h.reservation_id: h for h in lines.holds if h.sku == sku}
    for offer in offers:
        hold = holds.get(offer.reservation_id)
        if hold is not None and hold.customer_id != offer.customer_id:
            found.append(
                LineFinding(
                    "wl-double",
                    sku,
                    f"offer {offer.reservation_id} told to {offer.customer_id}, held for "
                    f"{hold.customer_id}",
                )
            )
    named = Counter(
        j.offer_id for j in line if j.offer_id and j.status in ("offered", "bought", "lapsed")
    )
    found += [
        LineFinding("wl-double", sku, f"offer {offer_id} named by {n} entries")
        for offer_id, n in sorted(named.items())
        if n > 1
    ]
    found += _overlaps(sku, offers, holds, lines)
    return found


def _overlaps(
    sku: str, offers: list[ShopEvent], holds: dict[str, Hold], lines: Lines
) -> list[LineFinding]:
    lapses = {e.reservation_id: e.at_ms for e in lines.events if e.kind == LAPSED}
    spans: dict[str, tuple[int, int, int]] = {}  # reservation id -> from, until, units
    for hold in holds.values():
        start, end = hold.taken(lapses.get(hold.reservation_id))
        spans[hold.reservation_id] = (start, end, hold.quantity)
    for offer in offers:
        if offer.reservation_id not in spans:  # its record is gone: the events alone
            end = lapses.get(offer.reservation_id, offer.at_ms)
            spans[offer.reservation_id] = (offer.at_ms, end, offer.quantity)
    found = []
    live: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for offer in offers:
        for other_start, other_end in live[offer.customer_id]:
            if other_start <= offer.at_ms < other_end:
                found.append(
                    LineFinding(
                        "wl-double",
                        sku,
                        f"{offer.customer_id} got offer {offer.reservation_id} while holding "
                        "another live offer",
                    )
                )
        # A bought offer stops being live when paid (not kept): count it live only at its start.
        live[offer.customer_id].append((offer.at_ms, lapses.get(offer.reservation_id, offer.at_ms)))
        taken = sum(n for s, e, n in spans.values() if s <= offer.at_ms < e)
        total = lines.totals.get(sku)
        if total is not None and taken > total:
            found.append(
                LineFinding(
                    "wl-double",
                    sku,
                    f"at offer {offer.reservation_id} ({offer.at_ms} ms) {taken} units taken, "
                    f"{total} in stock",
                )
            )
    return found


def _events(lines: Lines) -> list[LineFinding]:
    found = []
    first = [event_id for event_id, is_first in lines.received if is_first]
    got = set(first)
    known = {e.event_id for e in lines.events}
    for event in sorted(lines.events, key=lambda e: e.order):
        if event.event_id not in got:
            found.append(
                _shop(f"{event.kind} {event.event_id} of {event.customer_id} not received")
            )
        if not event.delivered:
            found.append(_shop(f"{event.kind} {event.event_id} still pending in MongoDB"))
    found += [
        _shop(f"received {event_id}, which the outbox never had")
        for event_id in first
        if event_id not in known
    ]
    found += _implied(lines)
    by_id = {e.event_id: e for e in lines.events}
    arrived: dict[str, list[ShopEvent]] = defaultdict(list)
    for event_id in first:
        if event_id in by_id:
            arrived[by_id[event_id].customer_id].append(by_id[event_id])
    for customer, events in sorted(arrived.items()):
        if events != sorted(events, key=lambda e: e.order):
            kinds = ", ".join(f"{e.kind} {e.reservation_id}" for e in events)
            found.append(_shop(f"{customer}'s events arrived out of order: {kinds}"))
    return found


def _implied(lines: Lines) -> list[LineFinding]:
    """Offers the entries and the records show, without their event."""
    made = {e.reservation_id for e in lines.events if e.kind == CREATED}
    lapsed = {e.reservation_id for e in lines.events if e.kind == LAPSED}
    found = [
        _shop(f"offer {hold.reservation_id} held for {hold.customer_id}: no offer_created event")
        for hold in lines.holds
        if is_offer(hold.reservation_id) and hold.reservation_id not in made
    ]
    for join in lines.joins:
        if join.status in ("offered", "bought", "lapsed") and join.offer_id not in made:
            found.append(_shop(f"{join.customer_id}'s entry is {join.status}: no offer_created"))
        if join.status == "lapsed" and join.offer_id not in lapsed:
            found.append(_shop(f"{join.customer_id}'s offer lapsed: no offer_lapsed event"))
    return found


def _shop(detail: str) -> LineFinding:
    return LineFinding("wl-events", "the shop", detail)


def waitlist_summary(lines: Lines) -> str:
    """One line of what the lines did: joins, offers and how they ended, public holds, events."""
    offers = [e for e in lines.events if e.kind == CREATED]
    records = {h.reservation_id: h for h in lines.holds}
    ended = Counter(records[o.reservation_id].status for o in offers if o.reservation_id in records)
    public = sum(1 for h in lines.holds if not is_offer(h.reservation_id))
    duplicates = sum(1 for _, first in lines.received if not first)
    return (
        f"waiting lists: {len(lines.joins)} joins, {len(offers)} offers (their holds: "
        f"{ended['committed']} bought, {ended['expired']} lapsed, {ended['released']} given back"
        f" or unpaid, {ended['held'] + ended['awaiting_payment']} live; "
        f"{sum(1 for e in lines.events if e.kind == LAPSED)} lapse events); "
        f"{public} public holds; {len(lines.events)} shop events, "
        f"{len(lines.received) - duplicates} received (+{duplicates} redelivered)"
    )
