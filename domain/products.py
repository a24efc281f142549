"""A catalog product as the service takes and gives it: what a write sets, what a read answers.

The catalog (reservation/usecases/catalog.py) takes and returns these; the HTTP layer turns its
bodies into them and them into its answers (reservation/api/products.py), so the catalog never
sees an HTTP schema.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """What a catalog write sets of a product (a PUT replaces the product whole)."""

    name: str
    price: int  # minor units of `currency`
    currency: str
    stock: int
    pool: str | None = None  # None: the product's current pool, or the default one
    max_per_customer: int | None = None  # None: no limit


@dataclass(frozen=True, slots=True)
class StockedProduct:
    """A catalog product with its live counts: what a product read answers. `spec` is the
    product as recorded (its `pool` always set here, its `stock` the units on hand)."""

    sku: str
    spec: ProductSpec
    reserved: int
    sold: int
    available: int
