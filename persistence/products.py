"""The durable product catalog: what is for sale, at what price, how many on hand."""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from domain.errors import InvalidRequest
from domain.products import ProductSpec, WaitingRoom, sale_window
from domain.rules import CURRENCY_REGEX, DEFAULT_POOL, MAX_PRODUCT_NAME, check_name, check_stock
from persistence.mongo import Database, Document, as_utc, storage_errors, utc_now
from persistence.revisions import Write, read_modify_replace, revised

CURRENCY_PATTERN = re.compile(CURRENCY_REGEX)


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    price: int  # minor units of `currency`
    currency: str  # ISO 4217, lowercase as Stripe writes it
    stock: int
    pool: str
    max_per_customer: int | None
    created_at: datetime
    updated_at: datetime
    sale_starts_at: datetime | None = None  # None: on sale from the start
    sale_ends_at: datetime | None = None  # None: on sale with no end
    waiting_room: WaitingRoom | None = None  # None: no room

    def spec(self) -> ProductSpec:
        """What a write set of this product."""
        return ProductSpec(
            self.name,
            self.price,
            self.currency,
            self.stock,
            self.pool,
            self.max_per_customer,
            self.sale_starts_at,
            self.sale_ends_at,
            self.waiting_room,
        )


def _check_fields(
    sku: object, name: object, price: object, currency: object, stock: object, pool: object
) -> str:
    check_name(sku, "sku")
    check_name(pool, "pool")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_PRODUCT_NAME:
        raise InvalidRequest(f"name must be 1 to {MAX_PRODUCT_NAME} characters", field="name")
    check_stock(price, "price")
    check_stock(stock, "stock")
    lowered = currency.lower() if isinstance(currency, str) else None
    if lowered is None or not CURRENCY_PATTERN.fullmatch(lowered):
        raise InvalidRequest("currency must be a 3-letter ISO 4217 code", field="currency")
    return lowered


def _document(product: Product) -> Document:
    return {
        "sku": product.sku,
        "name": product.name,
        "price": product.price,
        "currency": product.currency,
        "stock": product.stock,
        "pool": product.pool,
        "max_per_customer": product.max_per_customer,
        "created_at": product.created_at,
        "updated_at": product.updated_at,
        "sale_starts_at": product.sale_starts_at,
        "sale_ends_at": product.sale_ends_at,
        "waiting_room": _room_document(product.waiting_room),
    }


def _room_document(room: WaitingRoom | None) -> Document | None:
    if room is None:
        return None
    return {
        "admit_per_second": room.admit_per_second,
        "max_active": room.max_active,
        "admission_seconds": room.admission_seconds,
    }


def _room(document: Document | None) -> WaitingRoom | None:
    if not document:
        return None
    return WaitingRoom(
        document["admit_per_second"], document["max_active"], document["admission_seconds"]
    )


def _optional_time(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _product(document: Document) -> Product:
    return Product(
        sku=document["sku"],
        name=document["name"],
        price=int(document["price"]),
        currency=document["currency"],
        stock=int(document["stock"]),
        pool=document["pool"],
        max_per_customer=document.get("max_per_customer"),
        created_at=as_utc(document["created_at"]),
        updated_at=as_utc(document["updated_at"]),
        sale_starts_at=_optional_time(document.get("sale_starts_at")),
        sale_ends_at=_optional_time(document.get("sale_ends_at")),
        waiting_room=_room(document.get("waiting_room")),
    )


class ProductRepository:
    """The `products` collection, one document per SKU."""

    def __init__(self, db: Database) -> None:
        self.collection = db["products"]

    async def get(self, sku: str) -> Product | None:
        """The catalog entry of a SKU, or None."""
        async with storage_errors():
            document = await self.collection.find_one({"sku": sku})
        return None if document is None else _product(document)

    async def get_many(self, skus: Iterable[str]) -> dict[str, Product]:
        """The products of these SKUs that exist, by SKU."""
        wanted = sorted(set(skus))
        async with storage_errors():
            documents = await self.collection.find({"sku": {"$in": wanted}}).to_list()
        return {document["sku"]: _product(document) for document in documents}

    async def list(self) -> builtins.list[Product]:
        """Every product, sorted by SKU."""
        async with storage_errors():
            documents = await self.collection.find({}).sort("sku", 1).to_list()
        return [_product(document) for document in documents]

    async def upsert(
        self,
        sku: str,
        *,
        name: str,
        price: int,
        currency: str,
        stock: int,
        pool: str = DEFAULT_POOL,
        max_per_customer: int | None = None,
        sale_starts_at: datetime | None = None,
        sale_ends_at: datetime | None = None,
        waiting_room: WaitingRoom | None = None,
    ) -> tuple[Product, Product | None]:
        """Create or replace a product: the stored product and the one it replaced (or None)."""
        currency = _check_fields(sku, name, price, currency, stock, pool)
        starts, ends = sale_window(sale_starts_at, sale_ends_at)
        if max_per_customer is not None:
            check_stock(max_per_customer, "max_per_customer")

        def change(current: Document | None) -> Write[tuple[Product, Product | None]]:
            now = utc_now()
            product = Product(
                sku=sku,
                name=name,
                price=price,
                currency=currency,
                stock=stock,
                pool=pool,
                max_per_customer=max_per_customer or None,
                created_at=now if current is None else as_utc(current["created_at"]),
                updated_at=now,
                sale_starts_at=starts,
                sale_ends_at=ends,
                waiting_room=waiting_room,
            )
            return Write(
                _document(product), (product, None if current is None else _product(current))
            )

        return await read_modify_replace(self.collection, {"sku": sku}, change)

    async def restore(self, sku: str, previous: Product | None) -> None:
        """Undo an upsert: put `previous` back, or delete the product if there was none."""
        async with storage_errors():
            if previous is None:
                await self.collection.delete_one({"sku": sku})
            else:
                await self.collection.replace_one(
                    {"sku": sku}, revised(_document(previous)), upsert=True
                )
