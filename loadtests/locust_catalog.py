"""The SKUs a Locust run targets (`CATALOG`), and how they are chosen from a running service's
catalog when the run does not create its own (loadtests/locust_products.py). No Locust here:
the tests import it without gevent's patching."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HOT_SKU = "hot"  # the hot SKU's name when the run creates the products


class CatalogError(Exception):
    """The running service's catalog has nothing the scenarios can target."""


@dataclass
class Catalog:
    """The SKUs this run targets: the hot one, and every pool's SKUs (the hot one among them)."""

    hot: str = HOT_SKU
    shelves: dict[str, list[str]] = field(default_factory=lambda: {"default": [HOT_SKU]})


CATALOG = Catalog()


def existing(products: list[dict[str, Any]], parsed: Any) -> tuple[str, dict[str, list[str]]]:
    """The hot SKU and the shelves (pool -> SKUs) chosen from a catalog's product views."""
    by_sku = {str(product["sku"]): product for product in products}
    named = [sku for sku in (parsed.hot_sku, *_names(parsed.other_skus)) if sku]
    if unknown := [sku for sku in named if sku not in by_sku]:
        raise CatalogError(f"not in the service's catalog: {', '.join(unknown)}")
    open_ = [p for p in products if p["on_sale"] and not p["waiting_room"]]
    roomed = [p for p in products if p["waiting_room"]]
    # fair-start queues in the hot SKU's waiting room: a product with one, if any.
    fair_start = "fair-start" in (getattr(parsed, "tags", None) or [])
    hot = parsed.hot_sku or _scarcest((roomed if fair_start else []) or open_ or products)
    others = _names(parsed.other_skus) or [str(p["sku"]) for p in open_]
    found: dict[str, list[str]] = {str(by_sku[hot]["pool"]): [hot]}
    for sku in others:
        if sku != hot:
            found.setdefault(str(by_sku[sku]["pool"]), []).append(sku)
    return hot, found


def _scarcest(products: list[dict[str, Any]]) -> str:
    """The product with the fewest units left (none waiting for them), as a drop is."""
    if not products:
        raise CatalogError("the service has no products: PUT some, or pass --admin-token --stock")
    free = [p for p in products if p["available"] > 0 and not p["waitlist"]] or products
    return str(min(free, key=lambda p: (p["available"], p["sku"]))["sku"])


def _names(text: str) -> list[str]:
    return [name for name in (part.strip() for part in text.split(",")) if name]
