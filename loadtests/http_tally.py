"""Counting in the HTTP benchmark: the answers the load generator saw, the answers the server
counted (/metrics) and the SKU's `reserved` counter, and whether they agree."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from loadtests.http_cases import Case

SETTLE_SECONDS = 0.2  # poll period while waiting for the server to answer queued requests
SETTLE_TRIES = 25


@dataclass(frozen=True, slots=True)
class Tally:
    """Answers seen by the client, counted by the server, and the SKU's counter moved."""

    case: str
    expected_status: int
    client_2xx: int
    client_non_2xx: int
    server_statuses: dict[str, int] | None  # None: a server without /metrics (the floor)
    reserved_delta: int | None
    connections: int
    uncounted: str = ""  # why the server did not count its answers

    @property
    def server_expected(self) -> int | None:
        if self.server_statuses is None:
            return None
        return self.server_statuses.get(str(self.expected_status), 0)

    @property
    def unexpected(self) -> int:
        """Answers other than the expected status (by the server's count when there is one)."""
        if self.server_statuses is not None:
            expected = str(self.expected_status)
            return sum(n for status, n in self.server_statuses.items() if status != expected)
        return self.client_non_2xx if self.expected_status < 300 else self.client_2xx

    @property
    def consistent(self) -> bool:
        if self.reserved_delta is None:
            return self.unexpected == 0
        if self.expected_status >= 300:
            return self.reserved_delta == 0 and self.unexpected == 0
        if self.server_expected is not None and self.server_expected != self.reserved_delta:
            return False
        # Requests in flight when wrk stops are answered by the server but not read by wrk.
        in_flight = self.reserved_delta - self.client_2xx
        return 0 <= in_flight <= self.connections and self.unexpected == 0

    def text(self) -> str:
        parts = [f"client: {self.client_2xx} 2xx, {self.client_non_2xx} non-2xx"]
        if self.server_statuses is not None:
            parts.append(f"server: {dict(sorted(self.server_statuses.items()))}")
        if self.reserved_delta is not None:
            parts.append(f"reserved +{self.reserved_delta}")
            if self.expected_status < 300:
                parts.append(f"in flight at stop {self.reserved_delta - self.client_2xx}")
        parts.append("consistent" if self.consistent else "INCONSISTENT")
        return "; ".join(parts)


async def reserved(http: httpx.AsyncClient, sku: str) -> int:
    response = await http.get(f"/v1/products/{sku}")
    response.raise_for_status()
    return int(response.json()["reserved"])


async def answered(http: httpx.AsyncClient, route: str) -> Counter[str]:
    """Answers per status the server's /metrics counted under `route` (all its workers)."""
    response = await http.get("/metrics")
    response.raise_for_status()
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(response.text):
        if family.name != "reservation_http_request_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels.get("route") == route:
                counts[sample.labels["status"]] += int(sample.value)
    return counts


async def progress(http: httpx.AsyncClient, case: Case) -> int:
    """A counter that moves while the server still answers requests of `case`."""
    if case.counts_sku:
        return await reserved(http, case.counts_sku)
    if case.route:
        return sum((await answered(http, case.route)).values())
    return 0


async def quiesce(http: httpx.AsyncClient, case: Case) -> None:
    """Wait until the requests queued when the last load stopped are answered."""
    last = None
    for _ in range(SETTLE_TRIES):
        now = await progress(http, case)
        if now == last:
            return
        last = now
        await asyncio.sleep(SETTLE_SECONDS)
