"""The sale's products: the hot SKU and the others, spread over the pools, created once at the
start of a Locust run when --admin-token and --stock say so; with --admit-per-second each in a
waiting room, with --start-in each opening that long after the test starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from locust.env import Environment
from locust.runners import WorkerRunner

from loadtests.locust_options import options

HOT_SKU = "hot"


def sku_names(count: int) -> list[str]:
    """The SKUs besides the hot one: sku-000, sku-001, ..."""
    return [f"sku-{number:03d}" for number in range(count)]


def pool_names(parsed: Any) -> list[str]:
    """The pools --pools names (none: every SKU in the hot SKU's pool)."""
    return [pool for pool in parsed.pools.split(",") if pool]


def shelves(parsed: Any) -> dict[str, list[str]]:
    """Pool -> its SKUs: the hot SKU in --hot-pool, the others spread over --pools."""
    hot_pool = parsed.hot_pool or "default"
    pools = pool_names(parsed) or [hot_pool]
    found: dict[str, list[str]] = {hot_pool: [HOT_SKU]}
    for number, sku in enumerate(sku_names(parsed.skus)):
        found.setdefault(pools[number % len(pools)], []).append(sku)
    return found


def create_products(environment: Environment, **_: Any) -> None:
    """PUT the sale's products once (not on distributed workers), when asked to."""
    parsed = options(environment)
    if isinstance(environment.runner, WorkerRunner) or not parsed.stock or not parsed.admin_token:
        return
    import httpx

    headers = {"Authorization": f"Bearer {parsed.admin_token}"}
    room = waiting_room(parsed)
    with httpx.Client(base_url=environment.host or "", headers=headers, timeout=30) as http:
        for pool, skus in shelves(parsed).items():
            for sku in skus:
                body: dict[str, Any] = {"name": sku, "price": 1500, "currency": "eur"}
                body.update(stock=parsed.stock, pool=pool)
                if sku == HOT_SKU:
                    body.update(name="The drop", price=4900, stock=parsed.hot_stock or parsed.stock)
                elif parsed.limit:
                    body["max_per_customer"] = parsed.limit
                http.put(f"/v1/products/{sku}", json={**body, **room}).raise_for_status()


def waiting_room(parsed: Any) -> dict[str, Any]:
    """The room and sale start of every SKU (`--admit-per-second`, `--start-in`): the PUT's
    `waiting_room` and `sale_starts_at`, or nothing without them."""
    fields: dict[str, Any] = {}
    if parsed.admit_per_second > 0:
        fields["waiting_room"] = {
            "admit_per_second": parsed.admit_per_second,
            "max_active": parsed.max_active,
            "admission_seconds": parsed.admission_seconds,
        }
    if parsed.start_in >= 0:
        start = datetime.now(UTC) + timedelta(seconds=parsed.start_in)
        fields["sale_starts_at"] = start.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return fields
