"""The sale's products: the hot SKU and the others, spread over the pools, created once at the
start of a Locust run when --admin-token and --stock say so; with --admit-per-second each in a
waiting room, with --start-in each opening that long after the test starts.

Without them the scenarios target the catalog the service already has (a deployment, the demo):
every runner reads `GET /v1/products` at the start and takes `--hot-sku` (default: the scarcest
product on sale with no waiting room and nobody in its waiting list; for fair-start, the
scarcest behind a waiting room) and `--other-skus`
(default: the other products on sale without a room), grouped by their pools. `CATALOG` holds
what was chosen; the scenarios read it."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from locust.env import Environment
from locust.runners import WorkerRunner

from loadtests.locust_catalog import CATALOG, HOT_SKU, CatalogError, existing
from loadtests.locust_options import options

__all__ = ["CATALOG", "HOT_SKU", "choose_products", "create_products", "shelves"]

log = logging.getLogger(__name__)


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


def choose_products(environment: Environment, **_: Any) -> None:
    """A test_start listener: with --admin-token and --stock the sale's products (put once, not
    on distributed workers), else the running service's catalog, as `CATALOG`."""
    parsed = options(environment)
    if parsed.stock and parsed.admin_token:
        CATALOG.hot, CATALOG.shelves = HOT_SKU, shelves(parsed)
        if not isinstance(environment.runner, WorkerRunner):
            create_products(environment)
        return
    import httpx

    with httpx.Client(base_url=environment.host or "", timeout=30) as http:
        answer = http.get("/v1/products")
        answer.raise_for_status()
    try:
        CATALOG.hot, CATALOG.shelves = existing(answer.json()["data"], parsed)
    except CatalogError as error:  # stop at once, saying why, rather than a crowd of 404s
        log.error("%s", error)
        environment.process_exit_code = 2
        if environment.runner is not None:
            # A greenlet (Locust patches threading): quit once the start has returned.
            threading.Thread(target=environment.runner.quit).start()
        return
    log.info("targeting the catalog: hot %s, shelves %s", CATALOG.hot, CATALOG.shelves)


def create_products(environment: Environment) -> None:
    """PUT the sale's products: the hot SKU and --skus others, --stock units each."""
    parsed = options(environment)
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
