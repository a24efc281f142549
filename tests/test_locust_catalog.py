"""The Locust scenarios against a service's own catalog: the plain `locust -f` line of the
README, with no --admin-token, targets the products the service has (issue 27, item 8)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from loadtests.locust_catalog import CatalogError, existing
from tests.api import ADMIN_TOKEN
from tests.server import start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
LOCUST = Path(sys.executable).parent / "locust"


def view(sku: str, available: int, **fields: Any) -> dict[str, Any]:
    """A product view as GET /v1/products writes it (the fields the choice reads)."""
    product = {"sku": sku, "pool": "default", "available": available, "on_sale": True}
    return {**product, "waiting_room": None, "waitlist": 0, **fields}


# The demo's catalog as a visitor finds it (harness/demo_catalog.py).
DEMO = [
    view("hoodie", 200),
    view("last-vinyl", 0, waitlist=2),
    view("launch-jacket", 20, on_sale=False, waiting_room={"admit_per_second": 2}),
    view("signed-poster", 30),
    view("sneaker-drop", 5),
]


def chosen(
    products: list[dict[str, Any]], hot: str = "", others: str = "", tags: tuple[str, ...] = ()
) -> Any:
    return existing(products, SimpleNamespace(hot_sku=hot, other_skus=others, tags=list(tags)))


def test_the_scarcest_product_on_sale_is_the_hot_one() -> None:
    hot, shelves = chosen(DEMO)
    assert hot == "sneaker-drop"  # not the sold-out one with a line, not the one in a room
    assert shelves == {"default": ["sneaker-drop", "hoodie", "last-vinyl", "signed-poster"]}


def test_fair_start_queues_for_a_product_behind_a_waiting_room() -> None:
    hot, _ = chosen(DEMO, tags=("fair-start", "browsers"))
    assert hot == "launch-jacket"


def test_skus_named_on_the_command_line_are_taken_as_named() -> None:
    pooled = [*DEMO, view("mug", 9, pool="kitchen")]
    hot, shelves = chosen(pooled, hot="mug", others="hoodie, signed-poster")
    assert hot == "mug"
    assert shelves == {"kitchen": ["mug"], "default": ["hoodie", "signed-poster"]}


def test_a_sku_the_catalog_lacks_or_an_empty_catalog_is_refused_by_name() -> None:
    with pytest.raises(CatalogError, match="not in the service's catalog: hot"):
        chosen(DEMO, hot="hot")
    with pytest.raises(CatalogError, match="not in the service's catalog: nope"):
        chosen(DEMO, others="hoodie,nope")
    with pytest.raises(CatalogError, match="no products"):
        chosen([])


def locust(url: str, csv_prefix: Path) -> subprocess.CompletedProcess[str]:
    """The README's plain line, headless for 4 s, with the shoppers too (carts across SKUs)."""
    return subprocess.run(
        [
            *(str(LOCUST), "-f", "loadtests/locustfile.py", "--host", url, "--headless"),
            *("--users", "4", "--spawn-rate", "4", "--run-time", "4s"),
            *("--tags", "crowd", "browsers", "shoppers", "--csv", str(csv_prefix)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_plain_locust_line_targets_the_running_catalog(tmp_path: Path, mongodb_uri: str) -> None:
    server = start_server(tmp_path, mongodb_uri)
    try:
        empty = locust(server.url, tmp_path / "empty")
        assert empty.returncode == 2, empty.stderr[-3000:]
        assert "the service has no products" in empty.stderr
        assert "unknown_sku" not in empty.stderr
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        for sku, stock in (("tee", 50), ("cap", 3)):
            body = {"name": sku, "price": 1500, "currency": "eur", "stock": stock}
            url = f"{server.url}/v1/products/{sku}"
            httpx.put(url, json=body, headers=admin).raise_for_status()
        done = locust(server.url, tmp_path / "run")
        assert done.returncode == 0, done.stderr[-3000:]
        with (tmp_path / "run_stats.csv").open() as stats:
            rows = {row["Name"]: row for row in csv.DictReader(stats)}
        assert int(rows["Aggregated"]["Failure Count"]) == 0
        assert int(rows["Aggregated"]["Request Count"]) > 0
        assert "404" not in (tmp_path / "run_failures.csv").read_text()
        # The crowd asked for the scarcest product: its three units are held or were.
        cap = httpx.get(f"{server.url}/v1/products/cap").json()
        assert cap["reserved"] + cap["sold"] > 0
    finally:
        stop_server(server, mongodb_uri)
