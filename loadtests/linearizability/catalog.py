"""What a recorded run sells, and what the checker starts from: a few SKUs per pool with small
stock (so buyers contend and are refused often), per-customer limits that bite, the hold cap,
and the windows within which the service may answer from a process's memory.

`initial.json` beside a history is this, in the checker's form (loadtests/linearizability/
initial.py: the products as PUT, the hold cap), with the memories' periods the service ran
with: `{"hold_cap": n, "products": [{"sku", "pool", "stock", "max_per_customer"}, ...],
"sold_out_cache_seconds": s, "read_cache_seconds": s,
"comeback_pools": [pool, ...]}` (the late buyers' pools, comeback.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# Two pools of small stock; carts never cross pools. A limit of None: no per-customer limit.
DEFAULT_POOLS: dict[str, dict[str, tuple[int, int | None]]] = {
    "lin-a": {"a1": (4, 2), "a2": (3, None), "a3": (5, 2)},
    "lin-b": {"b1": (3, None), "b2": (6, 3)},
}
# The late buyers' pools (comeback.py): one SKU each, which the crowd never asks for; several
# at once, each in its own pool (checked apart), for more of their cycles in a run.
COMEBACK_POOLS = ("lin-c1", "lin-c2", "lin-c3")
COMEBACK_STOCK = 8  # late buyers a cycle: each may meet the worker that remembers
ALL_POOLS: dict[str, dict[str, tuple[int, int | None]]] = {
    **DEFAULT_POOLS,
    **{pool: {f"c{n}": (COMEBACK_STOCK, None)} for n, pool in enumerate(COMEBACK_POOLS, 1)},
}
HOLD_CAP = 3  # RESERVATION_MAX_HOLDS_PER_CUSTOMER: live holds per customer in a pool
# The service's defaults (the periods of the sold-out memory and of the product read cache),
# set explicitly: the checker's windows are made from them (staleness.py).
SOLDOUT_WINDOW = 0.1  # RESERVATION_SOLD_OUT_CACHE_SECONDS
READ_WINDOW = 0.1  # RESERVATION_READ_CACHE_SECONDS


@dataclass(frozen=True)
class Product:
    """One SKU as PUT: its stock on hand and its per-customer limit."""

    total: int
    limit: int | None


@dataclass(frozen=True)
class Catalog:
    """Every pool's SKUs, the hold cap and the memory windows of a run."""

    pools: Mapping[str, Mapping[str, Product]] = field(
        default_factory=lambda: {
            pool: {sku: Product(*spec) for sku, spec in skus.items()}
            for pool, skus in ALL_POOLS.items()
        }
    )
    comeback: tuple[str, ...] = COMEBACK_POOLS  # the late buyers' pools
    hold_cap: int = HOLD_CAP
    soldout_window: float = SOLDOUT_WINDOW
    read_window: float = READ_WINDOW

    @property
    def crowd(self) -> list[str]:
        """The pools the crowd buys from (all but the late buyers'), sorted."""
        return sorted(pool for pool in self.pools if pool not in self.comeback)

    def pool_of(self, sku: str) -> str:
        return next(pool for pool, skus in self.pools.items() if sku in skus)

    def service_env(self) -> dict[str, str]:
        """The service's settings this catalog is checked against."""
        return {
            "RESERVATION_MAX_HOLDS_PER_CUSTOMER": str(self.hold_cap),
            "RESERVATION_SOLD_OUT_CACHE_SECONDS": str(self.soldout_window),
            "RESERVATION_READ_CACHE_SECONDS": str(self.read_window),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "hold_cap": self.hold_cap,
            "products": [
                {"sku": sku, "pool": pool, "stock": p.total, "max_per_customer": p.limit}
                for pool, skus in self.pools.items()
                for sku, p in skus.items()
            ],
            "sold_out_cache_seconds": self.soldout_window,
            "read_cache_seconds": self.read_window,
            "comeback_pools": list(self.comeback),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Catalog:
        pools: dict[str, dict[str, Product]] = {}
        for item in data["products"]:
            limit = item.get("max_per_customer")
            product = Product(int(item["stock"]), None if limit is None else int(limit))
            pools.setdefault(str(item["pool"]), {})[str(item["sku"])] = product
        return cls(
            pools=pools,
            comeback=tuple(data.get("comeback_pools", ())),
            hold_cap=int(data["hold_cap"]),
            soldout_window=float(data.get("sold_out_cache_seconds", SOLDOUT_WINDOW)),
            read_window=float(data.get("read_cache_seconds", READ_WINDOW)),
        )

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> Catalog:
        return cls.from_json(json.loads(path.read_text()))


def put_products(service_url: str, admin_token: str, catalog: Catalog) -> None:
    """PUT every SKU of the catalog (before any client asks anything)."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=service_url, timeout=30, headers=headers) as http:
        for pool, skus in catalog.pools.items():
            for sku, product in skus.items():
                body = {
                    "name": f"Linearizability {sku}",
                    "price": 1000,
                    "currency": "eur",
                    "stock": product.total,
                    "pool": pool,
                    "max_per_customer": product.limit,
                }
                http.put(f"/v1/products/{sku}", json=body).raise_for_status()
