"""Products: the durable catalog in MongoDB, served from Redis.

Every PUT writes MongoDB (the truth), then Redis: the counters and, beside them, the product's
catalog entry (name, price, currency). A product read is then one Redis call and no MongoDB
call, and every worker of every process sees a PUT at once. When Redis has no entry (it was
emptied and rebuilt, or filled by an older version) the read falls back to MongoDB and fills
Redis with what it served.
"""

from __future__ import annotations

import asyncio
import builtins
from functools import partial

import msgspec

from domain import errors
from domain.reservations import Listed, StockLevel
from domain.rules import DEFAULT_POOL
from persistence.products import Product, ProductRepository
from reservation.api.schemas import ProductIn, ProductList, ProductView, encoder
from reservation.core.inventory import Inventory
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
    return _encode(CatalogEntry(product.name, product.price, product.currency)).decode()


def _entry(raw: str | None) -> CatalogEntry | None:
    if raw is None:
        return None
    try:
        return _decode(raw)
    except msgspec.DecodeError:
        return None  # unreadable: served from MongoDB instead, like a missing one


def _view(sku: str, entry: CatalogEntry, level: StockLevel) -> ProductView:
    return ProductView(
        sku=sku,
        name=entry.name,
        price=entry.price,
        currency=entry.currency,
        pool=level.pool,
        stock=level.total,
        reserved=level.reserved,
        sold=level.sold,
        available=level.available,
        max_per_customer=level.max_per_customer,
    )


def product_view(product: Product, level: StockLevel | None) -> ProductView:
    # A SKU missing from Redis (lost, not yet reconciled) offers nothing rather than guessing.
    reserved, sold, available = (
        (level.reserved, level.sold, level.available) if level else (0, 0, 0)
    )
    return ProductView(
        sku=product.sku,
        name=product.name,
        price=product.price,
        currency=product.currency,
        pool=product.pool,
        stock=product.stock,
        reserved=reserved,
        sold=sold,
        available=available,
        max_per_customer=product.max_per_customer,
    )


class Catalog:
    def __init__(self, products: ProductRepository, inventory: Inventory) -> None:
        self.products = products
        self.inventory = inventory

    async def put(self, sku: str, body: ProductIn) -> ProductView:
        """Write MongoDB first (the durable truth), then Redis; undo MongoDB if Redis refuses."""
        check_price(body.price, body.currency)
        current = await self.products.get(sku)
        pool = body.pool or (current.pool if current else DEFAULT_POOL)
        product, previous = await self.products.upsert(
            sku,
            name=body.name,
            price=body.price,
            currency=body.currency,
            stock=body.stock,
            pool=pool,
            max_per_customer=body.max_per_customer,
        )
        try:
            level = await self.inventory.stock.set_stock(
                sku,
                body.stock,
                pool=pool,
                max_per_customer=body.max_per_customer,
                entry=catalog_entry(product),
                existing=previous is not None,
            )
        except errors.ReservationError:
            await self.products.restore(sku, previous)
            raise
        return product_view(product, level)

    async def get_json(self, sku: str) -> bytes:
        """GET /v1/products/{sku}'s answer, remembered briefly by this process (readcache)."""
        return await self.inventory.reads.get(("product", sku), partial(self._product_json, sku))

    async def list_json(self) -> bytes:
        """GET /v1/products's answer, remembered briefly by this process (readcache)."""
        return await self.inventory.reads.get(("list",), self._list_json)

    async def _list_json(self) -> bytes:
        return encoder.encode(ProductList(await self.list()))

    async def _product_json(self, sku: str) -> bytes:
        """Redis assembles the answer in one call; when Redis cannot (no entry yet, or no
        counters), the view is built here, as `get` builds it."""
        try:
            found = await self.inventory.stock.product_json(sku)
        except errors.UnknownSku:
            found = None
        if found is not None:
            return found
        return encoder.encode(await self.get(sku))

    async def get(self, sku: str) -> ProductView:
        try:
            listed = await self.inventory.stock.listing([sku])
        except errors.UnknownSku:
            listed = []  # Redis does not stock it (yet): MongoDB says whether it exists
        if listed and (entry := _entry(listed[0].entry)) is not None:
            return _view(sku, entry, listed[0].level)
        return (await self._from_mongodb([sku], {item.level.sku: item for item in listed}))[0]

    async def list(self) -> list[ProductView]:
        pools = await self.inventory.pools.stocked(max_age=POOL_LIST_SECONDS)
        if not pools:  # Redis is empty: MongoDB still knows the catalog
            return await self._from_mongodb(None, {})
        per_pool = await asyncio.gather(
            *(self.inventory.stock.listing(pool=pool) for pool in pools)
        )
        listed = {item.level.sku: item for items in per_pool for item in items}
        views: dict[str, ProductView] = {}
        missing = []
        for sku, item in listed.items():
            entry = _entry(item.entry)
            if entry is None:
                missing.append(sku)
            else:
                views[sku] = _view(sku, entry, item.level)
        if missing:
            views.update((view.sku, view) for view in await self._from_mongodb(missing, listed))
        return [views[sku] for sku in sorted(views)]

    async def _from_mongodb(
        self, skus: builtins.list[str] | None, listed: dict[str, Listed]
    ) -> builtins.list[ProductView]:
        """Products Redis could not describe, from MongoDB; their entries are filled in Redis
        for next time (UnknownSku for a single SKU the catalog does not have)."""
        if skus is None:
            products = await self.products.list()
        else:
            found = await self.products.get_many(skus)
            if len(skus) == 1 and skus[0] not in found:
                raise errors.UnknownSku(f"unknown SKU {skus[0]}", sku=skus[0])
            products = [found[sku] for sku in skus if sku in found]
        views = []
        for product in products:
            item = listed.get(product.sku)
            if item is not None:
                await self.inventory.stock.keep_entry(
                    product.sku, product.pool, catalog_entry(product)
                )
            views.append(product_view(product, None if item is None else item.level))
        return views
