"""Products: the durable catalog in MongoDB, served from Redis.

Every PUT writes MongoDB (the truth), then Redis: the counters and, beside them, the product's
catalog entry (name, price, currency). A product read is then one Redis call and no MongoDB
call, and every worker of every process sees a PUT at once. When Redis has no entry (it was
emptied and rebuilt, or filled by an older version) the read falls back to MongoDB and fills
Redis with what it served.

The catalog takes and returns domain values (domain/products.py). The JSON it handles is of two
kinds: the entry it keeps beside the counters (a storage format the `product` script reads), and
the bytes of a product read, which Redis assembles and this process remembers briefly; where
Redis cannot assemble them, the HTTP layer's `encode` writes them, so the answer's shape is
defined by the HTTP layer alone.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable
from functools import partial

import msgspec

from domain import errors
from domain.products import ProductSpec, StockedProduct, sale_window
from domain.reservations import Listed, StockLevel
from domain.rules import DEFAULT_POOL
from persistence.products import Product, ProductRepository
from reservation.core.inventory import Inventory
from reservation.lua._pool import encode_room, encode_sale
from reservation.payments.money import check_price

# A PUT that adds a pool is seen by the list within this long (a new SKU of a known pool, and
# any change to a known SKU, at once).
POOL_LIST_SECONDS = 0.5


class CatalogEntry(msgspec.Struct, frozen=True):
    """What Redis keeps of a product beside its counters: a JSON object, whose members the
    product script splices into the product view it answers."""

    name: str
    price: int
    currency: str


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(CatalogEntry).decode


def catalog_entry(product: Product) -> str:
    """The JSON entry Redis keeps beside a product's counters (the `product` script reads it)."""
    return _encode(CatalogEntry(product.name, product.price, product.currency)).decode()


def sale_text(product: Product) -> str:
    """The sale window Redis keeps beside a product's counters (reserve and product read it)."""
    return encode_sale(product.sale_starts_at, product.sale_ends_at)


def room_text(product: Product) -> str:
    """The waiting room Redis keeps beside a product's counters (reserve and queue read it)."""
    return encode_room(product.waiting_room)


def _entry(raw: str | None) -> CatalogEntry | None:
    if raw is None:
        return None
    try:
        return _decode(raw)
    except msgspec.DecodeError:
        return None  # unreadable: served from MongoDB instead, like a missing one


def _stocked(sku: str, entry: CatalogEntry, listed: Listed) -> StockedProduct:
    level = listed.level
    spec = ProductSpec(
        entry.name,
        entry.price,
        entry.currency,
        level.total,
        level.pool,
        level.max_per_customer,
        *listed.sale,
        listed.room,
    )
    counts = (level.reserved, level.sold, level.available)
    return StockedProduct(sku, spec, *counts, level.on_sale, level.waiting)


def _recorded(product: Product, level: StockLevel | None) -> StockedProduct:
    # A SKU missing from Redis (lost, not yet reconciled) offers nothing rather than guessing
    # (nor is it on sale: only Redis's clock says so, and nothing can be held of it).
    if level is None:
        return StockedProduct(product.sku, product.spec(), 0, 0, 0, on_sale=False)
    counts = (level.reserved, level.sold, level.available)
    return StockedProduct(
        product.sku, product.spec(), *counts, on_sale=level.on_sale, waitlist=level.waiting
    )


class Catalog:
    def __init__(self, products: ProductRepository, inventory: Inventory) -> None:
        self.products = products
        self.inventory = inventory

    async def put(self, sku: str, spec: ProductSpec) -> StockedProduct:
        """Write MongoDB first (the durable truth), then Redis; undo MongoDB if Redis refuses."""
        check_price(spec.price, spec.currency)
        starts, ends = sale_window(spec.sale_starts_at, spec.sale_ends_at)
        current = await self.products.get(sku)
        pool = spec.pool or (current.pool if current else DEFAULT_POOL)
        product, previous = await self.products.upsert(
            sku,
            name=spec.name,
            price=spec.price,
            currency=spec.currency,
            stock=spec.stock,
            pool=pool,
            max_per_customer=spec.max_per_customer,
            sale_starts_at=starts,
            sale_ends_at=ends,
            waiting_room=spec.waiting_room,
        )
        try:
            level = await self.inventory.stock.set_stock(
                sku,
                spec.stock,
                pool=pool,
                max_per_customer=spec.max_per_customer,
                entry=catalog_entry(product),
                existing=previous is not None,
                sale=sale_text(product),
                room=room_text(product),
            )
        except errors.ReservationError:
            await self.products.restore(sku, previous)
            raise
        return _recorded(product, level)

    async def get_json(self, sku: str, encode: Callable[[StockedProduct], bytes]) -> bytes:
        """GET /v1/products/{sku}'s answer, remembered briefly by this process (readcache).

        `encode` writes the answer when Redis cannot assemble it; the process remembers the
        bytes whichever wrote them, so every caller passes the HTTP layer's one encoder."""
        return await self.inventory.reads.get(
            ("product", sku), partial(self._product_json, sku, encode)
        )

    async def list_json(self, encode: Callable[[builtins.list[StockedProduct]], bytes]) -> bytes:
        """GET /v1/products's answer (`encode` writes it), remembered briefly by this process."""
        return await self.inventory.reads.get(("list",), partial(self._list_json, encode))

    async def _list_json(self, encode: Callable[[builtins.list[StockedProduct]], bytes]) -> bytes:
        return encode(await self.list())

    async def _product_json(self, sku: str, encode: Callable[[StockedProduct], bytes]) -> bytes:
        """Redis assembles the answer in one call; when Redis cannot (no entry yet, or no
        counters), the product is read as `get` reads it, and encoded here."""
        try:
            found = await self.inventory.stock.product_json(sku)
        except errors.UnknownSku:
            found = None
        if found is not None:
            return found
        return encode(await self.get(sku))

    async def get(self, sku: str) -> StockedProduct:
        try:
            listed = await self.inventory.stock.listing([sku])
        except errors.UnknownSku:
            listed = []  # Redis does not stock it (yet): MongoDB says whether it exists
        if listed and (entry := _entry(listed[0].entry)) is not None:
            return _stocked(sku, entry, listed[0])
        return (await self._from_mongodb([sku], {item.level.sku: item for item in listed}))[0]

    async def list(self) -> list[StockedProduct]:
        pools = await self.inventory.pools.stocked(max_age=POOL_LIST_SECONDS)
        if not pools:  # Redis is empty: MongoDB still knows the catalog
            return await self._from_mongodb(None, {})
        per_pool = await asyncio.gather(
            *(self.inventory.stock.listing(pool=pool) for pool in pools)
        )
        listed = {item.level.sku: item for items in per_pool for item in items}
        stocked: dict[str, StockedProduct] = {}
        missing = []
        for sku, item in listed.items():
            entry = _entry(item.entry)
            if entry is None:
                missing.append(sku)
            else:
                stocked[sku] = _stocked(sku, entry, item)
        if missing:
            stocked.update((one.sku, one) for one in await self._from_mongodb(missing, listed))
        return [stocked[sku] for sku in sorted(stocked)]

    async def _from_mongodb(
        self, skus: builtins.list[str] | None, listed: dict[str, Listed]
    ) -> builtins.list[StockedProduct]:
        """Products Redis could not describe, from MongoDB; their entries are filled in Redis
        for next time (UnknownSku for a single SKU the catalog does not have)."""
        if skus is None:
            products = await self.products.list()
        else:
            found = await self.products.get_many(skus)
            if len(skus) == 1 and skus[0] not in found:
                raise errors.UnknownSku(f"unknown SKU {skus[0]}", sku=skus[0])
            products = [found[sku] for sku in skus if sku in found]
        stocked = []
        for product in products:
            item = listed.get(product.sku)
            if item is not None:
                await self.inventory.stock.keep_entry(
                    product.sku,
                    product.pool,
                    catalog_entry(product),
                    sale_text(product),
                    room_text(product),
                )
            stocked.append(_recorded(product, None if item is None else item.level))
        return stocked
