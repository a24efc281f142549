"""Rebuild Redis counters from MongoDB: `total` from the catalog, `sold` from paid orders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from domain.reservations import StockLevel
from domain.statuses import OrderStatus
from domain.waitlist import Waiter
from persistence.orders import OrderRepository
from persistence.products import Product, ProductRepository
from reservation.core.inventory import Inventory
from reservation.operations.waitlist_rebuild import WaitlistRecords, lines_to_restore
from reservation.settings import Settings
from reservation.usecases.catalog import catalog_entry, room_text, sale_text

FIELDS = ("total", "reserved", "sold", "max_per_customer")


@dataclass(frozen=True, slots=True)
class StockDiff:
    """One SKU's counters before (None: Redis did not have it) and after reconcile."""

    sku: str
    pool: str
    before: StockLevel | None
    after: StockLevel

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def changes(self) -> list[tuple[str, str, str]]:
        """(field, before, after) for each counter that differs."""
        rows = []
        for name in FIELDS:
            old = "-" if self.before is None else _shown(getattr(self.before, name))
            new = _shown(getattr(self.after, name))
            if old != new:
                rows.append((name, old, new))
        return rows


def sold_statuses(settings: Settings) -> tuple[OrderStatus, ...]:
    """Orders whose units count as sold: paid ones, and refunded ones unless a refund restocks."""
    if settings.restock_on_refund:
        return (OrderStatus.PAID,)
    return (OrderStatus.PAID, OrderStatus.REFUNDED)


async def reconcile(
    inventory: Inventory,
    products: ProductRepository,
    orders: OrderRepository,
    *,
    dry_run: bool = False,
    only_missing: bool = False,
    sold_statuses: Iterable[OrderStatus] = (OrderStatus.PAID,),
    waitlists: WaitlistRecords | None = None,
) -> list[StockDiff]:
    """Set each catalog SKU's counters from MongoDB; holds stay as Redis has them.

    `dry_run` predicts the result without writing; `only_missing` touches only SKUs Redis
    does not have (the app's start-up check). `sold_statuses` may add `refunded` when refunds
    do not put units back in stock. `waitlists`: the joins of the waiting lists, put back in
    line where Redis lost them (operations/waitlist_rebuild.py).
    """
    catalog = await products.list()
    statuses = tuple(sold_statuses)
    if dry_run:
        return await _rebuild(inventory, orders, catalog, dry_run, only_missing, statuses)
    pools = {product.pool for product in catalog}
    if only_missing:
        current = await _current_levels(inventory, catalog)
        pools = {product.pool for product in catalog if product.sku not in current}
        if not pools:
            return []
    # No payment may change `sold` between reading MongoDB and writing Redis.
    async with inventory.stock.fenced(pools):
        return await _rebuild(
            inventory, orders, catalog, dry_run, only_missing, statuses, waitlists
        )


async def _rebuild(
    inventory: Inventory,
    orders: OrderRepository,
    catalog: Sequence[Product],
    dry_run: bool,
    only_missing: bool,
    statuses: tuple[OrderStatus, ...],
    waitlists: WaitlistRecords | None = None,
) -> list[StockDiff]:
    current = await _current_levels(inventory, catalog)
    touched = {p.sku for p in catalog if not only_missing or p.sku not in current}
    sold = await _sold_and_settled(inventory, orders, statuses, touched, settle=not dry_run)
    lines: dict[str, list[Waiter]] = {}
    if waitlists is not None and not dry_run:
        lines = await lines_to_restore(waitlists, orders, touched)
    diffs = []
    for product in catalog:
        before = current.get(product.sku)
        if only_missing and before is not None:
            continue
        units_sold = sold.get(product.sku, 0)
        if dry_run:
            after = StockLevel(
                product.sku,
                product.pool,
                product.stock,
                0 if before is None else before.reserved,
                units_sold,
                product.max_per_customer,
            )
        else:
            before, after = await inventory.stock.restore(
                product.sku,
                total=product.stock,
                sold=units_sold,
                pool=product.pool,
                max_per_customer=product.max_per_customer,
                entry=catalog_entry(product),
                sale=sale_text(product),
                room=room_text(product),
                waitlist=inventory.waitlists.restore_args(product.pool, lines.get(product.sku, ())),
            )
        diffs.append(StockDiff(product.sku, product.pool, before, after))
    return diffs


async def _sold_and_settled(
    inventory: Inventory,
    orders: OrderRepository,
    statuses: tuple[OrderStatus, ...],
    skus: set[str],
    *,
    settle: bool,
) -> dict[str, int]:
    """Units sold per SKU, from one read of the orders; with `settle`, the reservation of each
    paid order is first marked committed, so that a redelivered payment counts nothing twice.

    One read, so that what is counted is exactly what was settled: a payment recorded paid
    after it is neither (its commit, fenced meanwhile, counts it later), never counted here
    without being settled (then its commit would count it again, or refund it as oversold
    while `sold` kept it; found by the redis-lost drill). A paid order whose payment Redis
    refused for good (oversold, its refund on the way) sells nothing."""
    sold: Counter[str] = Counter()
    async for order in orders.with_status(statuses):
        touched = any(line.sku in skus for line in order.items)
        if settle and touched and order.status is OrderStatus.PAID:
            settled = await inventory.holds.settle_paid(
                order.reservation_id, items=[(line.sku, line.quantity) for line in order.items]
            )
            if settled == "oversold":
                continue
        for line in order.items:
            sold[line.sku] += line.quantity
    return dict(sold)


async def _current_levels(
    inventory: Inventory, catalog: Sequence[Product]
) -> dict[str, StockLevel]:
    """The live counters of the catalog's SKUs, read pool by pool (a missing SKU is absent)."""
    levels: dict[str, StockLevel] = {}
    for pool in sorted({product.pool for product in catalog}):
        levels.update((level.sku, level) for level in await inventory.stock.levels(pool=pool))
    return levels


def format_diff(diffs: Sequence[StockDiff]) -> str:
    """A small table of what changed: sku, pool, field: before -> after."""
    rows = [
        (diff.sku, diff.pool, f"{name}: {old} -> {new}")
        for diff in diffs
        for name, old, new in diff.changes()
    ]
    changed = sum(1 for diff in diffs if diff.changed)
    summary = f"{changed} of {len(diffs)} SKUs changed"
    if not rows:
        return summary
    sku_width = max(3, *(len(row[0]) for row in rows))
    pool_width = max(4, *(len(row[1]) for row in rows))
    lines = [f"{'sku':<{sku_width}}  {'pool':<{pool_width}}  change"]
    lines += [f"{sku:<{sku_width}}  {pool:<{pool_width}}  {change}" for sku, pool, change in rows]
    return "\n".join([*lines, summary])


def _shown(value: int | None) -> str:
    return "-" if value is None else str(value)
