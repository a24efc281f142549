"""Products: the durable catalog in MongoDB joined with the live counters in Redis."""

from __future__ import annotations

from persistence.products import Product, ProductRepository
from reservation import errors
from reservation.inventory import DEFAULT_POOL, Inventory
from reservation.models import StockLevel
from reservation.money import check_price
from reservation.schemas import ProductIn, ProductView


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
            level = await self.inventory.set_stock(
                sku, body.stock, pool=pool, max_per_customer=body.max_per_customer
            )
        except errors.ReservationError:
            await self.products.restore(sku, previous)
            raise
        return product_view(product, level)

    async def get(self, sku: str) -> ProductView:
        product = await self.products.get(sku)
        if product is None:
            raise errors.UnknownSku(f"unknown SKU {sku}", sku=sku)
        levels = await self.inventory.stock([product.sku], pool=product.pool)
        return product_view(product, levels[0] if levels else None)

    async def list(self) -> list[ProductView]:
        products = await self.products.list()
        levels: dict[str, StockLevel] = {}
        for pool in sorted({product.pool for product in products}):
            levels.update((level.sku, level) for level in await self.inventory.stock(pool=pool))
        return [product_view(product, levels.get(product.sku)) for product in products]
