"""Waiting lists (issue 26), the core on every backend (real Redis, fakeredis, the cluster):
joins, the atomic hand-off of units that come back (release, lapse, restock, more stock), the
strict order of the line, leaving, closing, and the events the scripts leave for the shop.
The HTTP API is tests/test_waitlist_api.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain import errors
from domain.outcomes import Committed, Held, OutOfStock
from domain.reservations import CartLine
from reservation.core.inventory import Inventory
from reservation.lua._pool import encode_sale, text
from tests.conftest import age_hold

ENTRY = '{"name":"Tee","price":1500,"currency":"eur"}'


async def stocked(inventory: Inventory, sku: str, total: int, limit: int = 0) -> None:
    await inventory.stock.set_stock(sku, total, max_per_customer=limit or None, entry=ENTRY)


async def sold_out(inventory: Inventory, sku: str, total: int) -> list[str]:
    """`total` units of `sku`, every one held by its own buyer: the holds' ids."""
    await stocked(inventory, sku, total)
    ids = []
    for n in range(total):
        held = await inventory.holds.reserve([(sku, 1)], customer_id=f"crowd-{n}")
        assert isinstance(held, Held)
        ids.append(held.reservation.id)
    return ids


async def events(inventory: Inventory, pool: str = "default") -> list[tuple[str, ...]]:
    """The shop's events the scripts left: (type, offer id, sku, quantity, customer)."""
    raw = await inventory.client.lrange(inventory.keys.pool(pool).outbox, 0, -1)
    found: list[tuple[str, ...]] = []
    for entry in raw:
        _, _, kind, offer, sku, quantity, _, customer = text(entry).split("|", 7)
        found.append((kind, offer, sku, quantity, customer))
    return found


async def test_a_sku_on_sale_is_bought_not_waited_for(inventory: Inventory) -> None:
    await stocked(inventory, "tee", 3)
    with pytest.raises(errors.OnSale) as refused:
        await inventory.waitlists.join("tee", "ann", 1)
    assert refused.value.details["available"] == 3
    with pytest.raises(errors.CustomerRequired):
        await inventory.waitlists.join("tee", None, 1)
    with pytest.raises(errors.UnknownSku):
        await inventory.waitlists.join("nothing", "ann", 1)
    with pytest.raises(errors.NotInLine):
        await inventory.waitlists.read("tee", "ann")


async def test_joins_take_places_in_order_and_again_is_the_same_place(
    inventory: Inventory,
) -> None:
    await sold_out(inventory, "tee", 2)
    ann = await inventory.waitlists.join("tee", "ann", 1)
    bob = await inventory.waitlists.join("tee", "bob", 2)
    again = await inventory.waitlists.join("tee", "ann", 5)
    assert (ann.status, ann.position, ann.created) == ("waiting", 1, True)
    assert (bob.position, bob.quantity) == (2, 2)
    assert (again.position, again.quantity, again.created) == (1, 1, False)
    level = await inventory.stock.level("tee")
    assert (level.waiting, level.available) == (2, 0)


async def test_a_released_unit_is_offered_to_the_head_not_the_crowd(
    inventory: Inventory,
) -> None:
    ids = await sold_out(inventory, "tee", 2)
    await inventory.waitlists.join("tee", "ann", 1)
    await inventory.waitlists.join("tee", "bob", 1)
    await inventory.holds.release(ids[0])

    ann = await inventory.waitlists.read("tee", "ann")
    assert ann.status == "offered"
    assert ann.offer is not None
    offer = await inventory.holds.get(ann.offer.reservation_id)
    assert (offer.status, offer.customer_id, offer.items) == ("held", "ann", (CartLine("tee", 1),))
    assert offer.expires_at == ann.offer.expires_at
    assert (await inventory.waitlists.read("tee", "bob")).position == 1
    # The crowd finds nothing: the unit went to the line in the release itself.
    refused = await inventory.holds.reserve([("tee", 1)], customer_id="fast-bot")
    assert isinstance(refused, OutOfStock)
    level = await inventory.stock.level("tee")
    assert (level.reserved, level.sold, level.waiting, level.available) == (2, 0, 1, 0)
    assert await events(inventory) == [
        ("offer_created", ann.offer.reservation_id, "tee", "1", "ann")
    ]


async def test_a_head_that_does_not_fit_keeps_its_place_and_nobody_passes_it(
    inventory: Inventory,
) -> None:
    ids = await sold_out(inventory, "tee", 3)
    await inventory.waitlists.join("tee", "ann", 2)
    await inventory.waitlists.join("tee", "bob", 1)
    await inventory.holds.release(ids[0])
    # One unit back: ann wants two; bob, behind her, does not pass her; the public gets none.
    assert (await inventory.waitlists.read("tee", "ann")).status == "waiting"
    assert (await inventory.waitlists.read("tee", "bob")).status == "waiting"
    assert isinstance(await inventory.holds.reserve([("tee", 1)], customer_id="x"), OutOfStock)
    await inventory.holds.release(ids[1])
    ann = await inventory.waitlists.read("tee", "ann")
    assert (ann.status, ann.quantity) == ("offered", 2)
    await inventory.holds.release(ids[2])
    assert (await inventory.waitlists.read("tee", "bob")).status == "offered"
    level = await inventory.stock.level("tee")
    assert (level.reserved, level.waiting, level.available) == (3, 0, 0)


async def test_a_lapsed_offer_passes_its_units_to_the_next_and_the_shop_hears_both(
    inventory: Inventory,
) -> None:
    ids = await sold_out(inventory, "tee", 1)
    await inventory.waitlists.join("tee", "ann", 1)
    await inventory.waitlists.join("tee", "bob", 1)
    await age_hold(inventory.client, inventory.keys, ids[0])
    await inventory.holds.reclaim("default")
    ann = await inventory.waitlists.read("tee", "ann")
    assert ann.offer is not None
    await age_hold(inventory.client, inventory.keys, ann.offer.reservation_id)
    await inventory.holds.reclaim("default")

    ann = await inventory.waitlists.read("tee", "ann")
    bob = await inventory.waitlists.read("tee", "bob")
    assert ann.status == "lapsed"
    assert bob.status == "offered"
    assert ann.offer is not None
    assert bob.offer is not None
    assert await events(inventory) == [
        ("offer_created", ann.offer.reservation_id, "tee", "1", "ann"),
        ("offer_lapsed", ann.offer.reservation_id, "tee", "1", "ann"),
        ("offer_created", bob.offer.reservation_id, "tee", "1", "bob"),
    ]
    assert (await inventory.holds.get(ann.offer.reservation_id)).status == "expired"
    level = await inventory.stock.level("tee")
    assert (level.reserved, level.available) == (1, 0)


async def test_a_lapse_settled_by_its_own_reservation_offers_too(inventory: Inventory) -> None:
    ids = await sold_out(inventory, "tee", 1)
    await inventory.waitlists.join("tee", "ann", 1)
    await age_hold(inventory.client, inventory.keys, ids[0])
    assert (await inventory.holds.get(ids[0])).status == "expired"  # lookup settles the lapse
    assert (await inventory.waitlists.read("tee", "ann")).status == "offered"


async def test_an_offer_is_bought_like_any_hold(inventory: Inventory) -> None:
    ids = await sold_out(inventory, "tee", 1)
    await inventory.waitlists.join("tee", "ann", 1)
    await inventory.holds.release(ids[0])
    ann = await inventory.waitlists.read("tee", "ann")
    assert ann.offer is not None
    assert isinstance(await inventory.holds.commit(ann.offer.reservation_id), Committed)
    assert (await inventory.waitlists.read("tee", "ann")).status == "bought"
    line = await inventory.waitlists.line("tee")
    assert (line.waiting, line.offers) == (0, 0)
    level = await inventory.stock.level("tee")
    assert (level.reserved, level.sold) == (0, 1)


async def test_a_given_back_offer_goes_on_down_the_line(inventory: Inventory) -> None:
    ids = await sold_out(inventory, "tee", 1)
    await inventory.waitlists.join("tee", "ann", 1)
    await inventory.waitlists.join("tee", "bob", 1)
    await inventory.holds.release(ids[0])
    ann = await inventory.waitlists.read("tee", "ann")
    assert ann.offer is not None
    await inventory.holds.release(ann.offer.reservation_id)
    assert (await inventory.waitlists.read("tee", "ann")).status == "left"
    assert (await inventory.waitlists.read("tee", "bob")).status == "offered"
    assert [kind for kind, *_ in await events(inventory)] == ["offer_created", "offer_created"]


async def test_more_stock_and_a_restock_go_to_the_line_first(inventory: Inventory) -> None:
    await sold_out(inventory, "tee", 1)
    await inventory.waitlists.join("tee", "ann", 2)
    await inventory.waitlists.join("tee", "bob", 1)
    await inventory.waitlists.join("tee", "cy", 1)
    level = await inventory.stock.set_stock("tee", 4, entry=ENTRY)
    assert level.reserved == 1 + 2 + 1  # ann and bob offered at once; cy waits
    assert (await inventory.waitlists.read("tee", "ann")).status == "offered"
    assert (await inventory.waitlists.read("tee", "bob")).status == "offered"
    assert (await inventory.waitlists.read("tee", "cy")).position == 1

    bob = await inventory.waitlists.read("tee", "bob")
    assert bob.offer is not None
    await inventory.holds.commit(bob.offer.reservation_id)
    await inventory.holds.restock(bob.offer.reservation_id)  # refunded, units back on sale
    assert (await inventory.waitlists.read("tee", "cy")).status == "offered"


async def test_a_head_that_leaves_lets_the_next_take_the_units_kept(
    inventory: Inventory,
) -> None:
    ids = await sold_out(inventory, "tee", 1)
    await inventory.waitlists.join("tee", "ann", 2)
    await inventory.waitlists.join("tee", "bob", 1)
    await inventory.holds.release(ids[0])  # kept for ann, who needs two
    left = await inventory.waitlists.leave("tee", "ann")
    assert (left.status, left.position) == ("left", 0)
    assert (await inventory.waitlists.read("tee", "bob")).status == "offered"
    again = await inventory.waitlists.leave("tee", "ann")
    assert again.status == "left"
    with pytest.raises(errors.NotInLine):
        await inventory.waitlists.leave("tee", "zed")


async def test_a_closed_list_sends_its_line_away_and_the_units_back_on_sale(
    inventory: Inventory,
) -> None:
    ids = await sold_out(inventory, "tee", 1)
    await inventory.waitlists.join("tee", "ann", 2)
    await inventory.holds.release(ids[0])
    assert await inventory.waitlists.close("tee") == 1
    assert (await inventory.waitlists.read("tee", "ann")).status == "left"
    with pytest.raises(errors.WaitlistClosed):
        await inventory.waitlists.join("tee", "bob", 1)
    assert isinstance(await inventory.holds.reserve([("tee", 1)], customer_id="x"), Held)
    await inventory.waitlists.open("tee")
    assert (await inventory.waitlists.join("tee", "bob", 1)).status == "waiting"
    line = await inventory.waitlists.line("tee")
    assert (line.closed, line.waiting, [w.customer_id for w in line.line]) == (False, 1, ["bob"])


async def test_a_join_stays_within_the_per_customer_limit(inventory: Inventory) -> None:
    await stocked(inventory, "tee", 2, limit=2)
    await inventory.holds.reserve([("tee", 1)], customer_id="ann")
    await inventory.holds.reserve([("tee", 1)], customer_id="bob")
    with pytest.raises(errors.CustomerLimitExceeded):
        await inventory.waitlists.join("tee", "ann", 2)
    assert (await inventory.waitlists.join("tee", "ann", 1)).status == "waiting"


async def test_a_restore_puts_a_lost_line_back_before_any_unit_goes_public(
    inventory: Inventory,
) -> None:
    await sold_out(inventory, "tee", 2)
    await inventory.waitlists.join("tee", "ann", 2)
    await inventory.waitlists.join("tee", "bob", 1)
    line = (await inventory.waitlists.line("tee")).line
    pool = inventory.keys.pool("default")
    # Redis loses the pool: counters, holds, the line (a restart with nothing on disk).
    await inventory.client.delete(*pool.shared)
    tail = inventory.waitlists.restore_args("default", line)
    before, after = await inventory.stock.restore(
        "tee", total=3, sold=0, entry=ENTRY, waitlist=tail
    )
    assert before is None
    # Three units free (the holds were lost): ann's two and bob's one are offered at once.
    assert (after.reserved, after.waiting, after.available) == (3, 0, 0)
    assert (await inventory.waitlists.read("tee", "ann")).status == "offered"
    assert (await inventory.waitlists.read("tee", "bob")).status == "offered"
    # Restored again (a reconcile while Redis kept the line): nobody is put back twice.
    await inventory.stock.restore("tee", total=3, sold=0, entry=ENTRY, waitlist=tail)
    assert (await inventory.waitlists.line("tee")).waiting == 0


async def test_a_restore_keeps_the_order_and_the_kept_units(inventory: Inventory) -> None:
    await sold_out(inventory, "tee", 1)
    for customer, quantity in (("ann", 2), ("bob", 1)):
        await inventory.waitlists.join("tee", customer, quantity)
    line = (await inventory.waitlists.line("tee")).line
    await inventory.client.delete(*inventory.keys.pool("default").shared)
    tail = inventory.waitlists.restore_args("default", line)
    await inventory.stock.restore("tee", total=1, sold=0, entry=ENTRY, waitlist=tail)
    ann = await inventory.waitlists.read("tee", "ann")
    bob = await inventory.waitlists.read("tee", "bob")
    assert (ann.status, ann.position, bob.position) == ("waiting", 1, 2)
    assert isinstance(await inventory.holds.reserve([("tee", 1)], customer_id="x"), OutOfStock)


async def test_a_list_waits_for_a_sale_that_is_on(inventory: Inventory) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    ids = await sold_out(inventory, "tee", 1)
    await inventory.waitlists.join("tee", "ann", 1)
    # The sale ends: units that come back are not offered any more; nobody joins.
    window = encode_sale(now - timedelta(hours=2), now - timedelta(hours=1))
    await inventory.stock.set_stock("tee", 1, entry=ENTRY, sale=window)
    await inventory.holds.release(ids[0])
    assert (await inventory.waitlists.read("tee", "ann")).status == "waiting"
    with pytest.raises(errors.NotOnSale):
        await inventory.waitlists.join("tee", "bob", 1)
    # The end moved later (a PUT): the next units that come back go to the line again.
    window = encode_sale(now - timedelta(hours=2), now + timedelta(hours=1))
    await inventory.stock.set_stock("tee", 1, entry=ENTRY, sale=window)
    assert (await inventory.waitlists.read("tee", "ann")).status == "offered"
