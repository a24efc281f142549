"""What a recorded run sells, and what the checker starts from: a few SKUs per pool with small
stock (so buyers contend and are refused often), per-customer limits that bite, the hold cap,
and the windows within which the service may answer from a process's memory.

`initial.json` beside a history is this, as JSON:
`{"pools": {pool: {sku: {"total": n, "limit": m or null}}}, "hold_cap": n,
"soldout_window": s, "read_window": s}`.
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
HOLD_CAP = 3  # RESERVATION_MAX_HOLDS_PER_CUSTOMER: live holds per customer in a pool
# The service's defaults, set explicitly so that the checker is told what the service ran with.
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
            for pool, skus in DEFAULT_POOLS.items()
        }
    )
    hold_cap: int = HOLD_CAP
    soldout_window: float = SOLDOUT_WINDOW
    read_window: float = READ_WINDOW

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
            "pools": {
                pool: {sku: {"total": p.total, "limit": p.limit} for sku, p in skus.items()}
                for pool, skus in self.pools.items()
            },
            "hold_cap": self.hold_cap,
            "soldout_window": self.soldout_window,
            "read_window": self.read_window,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Catalog:
        pools = {
            str(pool): {
                str(sku): Product(int(p["total"]), None if p["limit"] is None else int(p["limit"]))
                for sku, p in skus.items()
            }
            for pool, skus in data["pools"].items()
        }
        return cls(
            pools=pools,
            hold_cap=int(data["hold_cap"]),
            soldout_window=float(data["soldout_window"]),
            read_window=float(data["read_window"]),
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
