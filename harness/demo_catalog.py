"""The demo's catalog: what a visitor sees on a fresh demo, put when the catalog is empty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from harness.customer_tokens import bearer, mint


class SeedError(Exception):
    """The service refused a product of the demo's catalog."""


# What a visitor should see: a drop of a few units (one per customer), a larger stock, a
# product with a per-customer limit of two, and a fair start: a launch whose sale opens a
# minute and a half after the demo seeded it (LAUNCH_STARTS_IN), behind a waiting room that
# lets in two buyers a second, at most three with a turn at once. Whoever joins its line
# before the start is placed by one random draw at the start. And a waiting list: the last
# record, its one unit held at the seeding by a simulated buyer (EARLY_BIRD) who never pays, so
# it shows sold out; a visitor joins its waiting list, and when that hold lapses (the demo's
# holds last two minutes) the unit is offered to the head of the line, not put back on sale.
DEMO_PRODUCTS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "sneaker-drop",
        {
            "name": "Numbered sneaker drop",
            "price": 18900,
            "currency": "eur",
            "stock": 5,
            "max_per_customer": 1,
        },
    ),
    ("hoodie", {"name": "Heavyweight hoodie", "price": 6900, "currency": "eur", "stock": 200}),
    (
        "signed-poster",
        {
            "name": "Signed tour poster",
            "price": 2500,
            "currency": "eur",
            "stock": 30,
            "max_per_customer": 2,
        },
    ),
    (
        "launch-jacket",
        {
            "name": "Launch-day jacket (fair start)",
            "price": 24900,
            "currency": "eur",
            "stock": 20,
            "max_per_customer": 1,
            "waiting_room": {"admit_per_second": 2, "max_active": 3, "admission_seconds": 120},
        },
    ),
    (
        "last-vinyl",
        {
            "name": "Last test-pressing vinyl (waiting list)",
            "price": 4500,
            "currency": "eur",
            "stock": 1,
            "max_per_customer": 1,
        },
    ),
)
LAUNCH = "launch-jacket"
WAITLISTED = "last-vinyl"
EARLY_BIRD = "early-bird"
LAUNCH_STARTS_IN = timedelta(seconds=90)


def _with_start(sku: str, body: dict[str, Any]) -> dict[str, Any]:
    """The launch's body with its start, LAUNCH_STARTS_IN from now (the others as they are)."""
    if sku != LAUNCH:
        return body
    starts = datetime.now(UTC) + LAUNCH_STARTS_IN
    return {**body, "sale_starts_at": starts.isoformat(timespec="milliseconds")}


def seed(url: str, admin_token: str, customer_token_secret: str) -> tuple[str, ...]:
    """PUT the demo products when the catalog is empty, and hold the waiting-list product's
    unit for EARLY_BIRD (a token signed with `customer_token_secret`, as the shop's backend
    signs its buyers'); the SKUs written (none otherwise)."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=url, timeout=10, headers=headers) as client:
        listed = client.get("/v1/products")
        listed.raise_for_status()
        if listed.json()["data"]:
            return ()
        for sku, body in DEMO_PRODUCTS:
            answer = client.put(f"/v1/products/{sku}", json=_with_start(sku, body))
            if answer.status_code != 200:
                raise SeedError(f"seeding {sku} was refused: {answer.status_code} {answer.text}")
        cart = {"items": [{"sku": WAITLISTED, "quantity": 1}], "customer_id": EARLY_BIRD}
        early_bird = bearer(mint(EARLY_BIRD, customer_token_secret))
        held = client.post("/v1/reservations", json=cart, headers=early_bird)
        if held.status_code != 201:
            raise SeedError(f"holding {WAITLISTED} was refused: {held.status_code} {held.text}")
    return tuple(sku for sku, _ in DEMO_PRODUCTS)
