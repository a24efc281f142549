"""The HTTP benchmark's cases (what each window requests, from which server, and what it
should answer), and what a load generator saw over one window."""

from __future__ import annotations

import json
from dataclasses import dataclass

from loadtests.floor import FLOOR_PATH

SKU = "hot"
SOLD_OUT_SKU = "gone"
STOCK = 10**11  # far above what a run can hold (the API takes at most 10^12)
CROWD = 3000  # connections of the many-connections case
TOKENS = 20_000  # buyers of the token case, each with a token of its own
LISTED_SKUS = 20  # the list case's catalog: SKU, SOLD_OUT_SKU and these others
RESERVE_BODY = json.dumps({"items": [{"sku": SKU, "quantity": 1}]}, separators=(",", ":"))
SOLD_OUT_BODY = RESERVE_BODY.replace(f'"{SKU}"', f'"{SOLD_OUT_SKU}"')
ROUTE_OF = {
    "reserve": "/v1/reservations",
    "get_product": "/v1/products/{sku}",
    "list_products": "/v1/products",
}
UNCOUNTED = {"floor": "n/a (no /metrics)"}


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    # "app" (1 worker), "app2" (2 workers: /metrics answers for both, prometheus_client's
    # multiprocess mode) or "floor".
    server: str
    method: str
    path: str
    expected_status: int
    body: str | None = None
    counts_sku: str | None = None  # the SKU whose `reserved` counter must match the 201s
    connections: int | None = None  # of the load generator; None: the run's --connections
    # Customer tokens sent as Authorization: Bearer, one buyer's after another, round robin
    # (loadtests/http_tokens.py); 0: none (an anonymous request).
    tokens: int = 0

    @property
    def route(self) -> str | None:
        """The route template the server's /metrics counts this case's answers under."""
        if self.server == "floor":
            return None
        if self.name in ROUTE_OF:
            return ROUTE_OF[self.name]
        return ROUTE_OF["get_product" if self.method == "GET" else "reserve"]

    def load_connections(self, default: int) -> int:
        return self.connections or default


CASES = (
    Case("reserve", "app", "POST", "/v1/reservations", 201, RESERVE_BODY, SKU),
    Case(
        f"reserve_{CROWD}_connections",
        "app",
        "POST",
        "/v1/reservations",
        201,
        RESERVE_BODY,
        SKU,
        connections=CROWD,
    ),
    # The same reserve by verified buyers: every request a token of its own (TOKENS of them, so
    # none repeats within a window's first seconds), and one buyer's token sent again and again.
    Case("reserve_token", "app", "POST", "/v1/reservations", 201, RESERVE_BODY, SKU, tokens=TOKENS),
    Case("reserve_same_token", "app", "POST", "/v1/reservations", 201, RESERVE_BODY, SKU, tokens=1),
    Case("reserve_sold_out", "app", "POST", "/v1/reservations", 409, SOLD_OUT_BODY, SOLD_OUT_SKU),
    Case("get_product", "app", "GET", f"/v1/products/{SKU}", 200),
    Case("list_products", "app", "GET", "/v1/products", 200),
    Case("floor", "floor", "GET", FLOOR_PATH, 200),
    Case("floor_post", "floor", "POST", FLOOR_PATH, 200, RESERVE_BODY),
    Case("reserve_2_workers", "app2", "POST", "/v1/reservations", 201, RESERVE_BODY, SKU),
)


@dataclass(frozen=True, slots=True)
class Load:
    """What the load generator saw over one window."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float | None
    p99_ms: float | None

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0
