"""What the service held before the first operation of a history: the model's initial state.

The recorder sets the products up (PUT /v1/products/{sku}, every counter at 0) before any
client starts, and writes this record beside the history, so the checker starts each pool's
model from the same stock, limits and hold cap the service had. The JSON form mirrors the PUT
body::

    {"hold_cap": 5,
     "products": [{"sku": "a-1", "pool": "lin-a", "stock": 3, "max_per_customer": 2}, ...]}

`hold_cap` is RESERVATION_MAX_HOLDS_PER_CUSTOMER (0: no cap); `max_per_customer` null is no
limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HOLD_CAP = 5  # reservation/settings.py: max_holds_per_customer


@dataclass(frozen=True, slots=True)
class Product:
    """One SKU as the recorder put it: `stock` on hand, nothing reserved or sold yet."""

    sku: str
    pool: str
    stock: int
    max_per_customer: int | None = None

    def __post_init__(self) -> None:
        if self.stock < 0:
            raise ValueError(f"{self.sku}: stock must be >= 0")
        if self.max_per_customer is not None and self.max_per_customer < 1:
            raise ValueError(f"{self.sku}: max_per_customer must be >= 1 or None")

    def to_json(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "pool": self.pool,
            "stock": self.stock,
            "max_per_customer": self.max_per_customer,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Product:
        limit = data.get("max_per_customer")
        return cls(
            sku=str(data["sku"]),
            pool=str(data["pool"]),
            stock=int(data["stock"]),
            max_per_customer=None if limit is None else int(limit),
        )


@dataclass(frozen=True, slots=True)
class Initial:
    """Every product of the run and the service's hold cap."""

    products: tuple[Product, ...]
    hold_cap: int = DEFAULT_HOLD_CAP

    def __post_init__(self) -> None:
        skus = [product.sku for product in self.products]
        if len(set(skus)) != len(skus):
            raise ValueError("a SKU is set up twice")
        if self.hold_cap < 0:
            raise ValueError("hold_cap must be >= 0")

    @classmethod
    def of(cls, products: Iterable[Product], hold_cap: int = DEFAULT_HOLD_CAP) -> Initial:
        return cls(tuple(products), hold_cap)

    def pools(self) -> list[str]:
        return sorted({product.pool for product in self.products})

    def pool(self, pool: str) -> tuple[Product, ...]:
        """The products of one pool, in SKU order."""
        return tuple(sorted((p for p in self.products if p.pool == pool), key=lambda p: p.sku))

    def to_json(self) -> dict[str, Any]:
        return {
            "hold_cap": self.hold_cap,
            "products": [product.to_json() for product in self.products],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Initial:
        return cls(
            products=tuple(Product.from_json(item) for item in data["products"]),
            hold_cap=int(data.get("hold_cap", DEFAULT_HOLD_CAP)),
        )


def write(path: Path, initial: Initial) -> None:
    path.write_text(json.dumps(initial.to_json(), sort_keys=True, indent=1) + "\n", "utf-8")


def read(path: Path) -> Initial:
    return Initial.from_json(json.loads(path.read_text("utf-8")))
