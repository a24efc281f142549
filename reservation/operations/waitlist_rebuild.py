"""The waiting lists a rebuild puts back in line (docs/design.md, *Waiting lists*: durability).

Redis decides a waiting list; MongoDB keeps each join (persistence/waitlist.py), each offer made
or lapsed (the shop's events, persistence/outbox.py) and each paid order. When Redis lost a
pool, everyone who joined and has not ended their join is put back in line, in join order, by
the same `restore` call that gives the counters back (reconcile), so no unit they wait for is
sold to the public meanwhile. A join has ended when it was marked left (left, removed, the list
closed), when an offer of it lapsed (an `offer_lapsed` event after the join), or when an offer
of it was paid for (a paid or refunded order of an offer id of that customer and SKU, made
after the join). An offer that was out when Redis was lost was lost with its hold: its buyer is
back in line at their place, and is offered units again.

Not seen from MongoDB, so such a buyer is put back in line too: an offer given back by its
buyer (a release, or its Checkout Session expired), and an event not yet relayed when Redis was
lost (the relay moves them every RESERVATION_OUTBOX_INTERVAL_SECONDS).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from domain.statuses import OrderStatus
from domain.waitlist import Waiter
from persistence.orders import OrderRepository
from persistence.outbox import ShopEventOutbox
from persistence.waitlist import WaitlistJoins
from reservation.core.waitlist import is_offer_id

# An order of an offer in these statuses ends the join it came from (its units were bought).
BOUGHT = (OrderStatus.PAID, OrderStatus.REFUNDED)


@dataclass(frozen=True, slots=True)
class WaitlistRecords:
    """Where MongoDB keeps what a rebuild needs of the waiting lists."""

    joins: WaitlistJoins
    events: ShopEventOutbox


async def lines_to_restore(
    records: WaitlistRecords, orders: OrderRepository, skus: Iterable[str]
) -> dict[str, list[Waiter]]:
    """Per SKU, the joins to put back in line, in join order."""
    wanted = set(skus)
    ended = await records.events.lapsed_offers(wanted)
    async for order in orders.with_status(BOUGHT):
        if order.customer_id is None or not is_offer_id(order.reservation_id):
            continue
        for line in order.items:
            key = (line.sku, order.customer_id)
            ended[key] = max(ended.get(key, 0), int(order.created_at.timestamp() * 1000))
    lines: dict[str, list[Waiter]] = {}
    for sku in sorted(wanted):
        for join in await records.joins.waiting_joins(sku):
            joined_ms = int(join.joined_at.timestamp() * 1000)
            if ended.get((sku, join.customer_id), -1) >= joined_ms:
                continue
            lines.setdefault(sku, []).append(
                Waiter(join.customer_id, join.quantity, join.joined_at)
            )
    return lines
