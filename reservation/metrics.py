"""Prometheus metrics: reservations by outcome, lapsed holds, latencies.

A plain module the use cases count into: the HTTP side of metrics (the middleware timing each
request, reservation/api/request_timer.py; the /metrics answer, reservation/api/ops.py) lives
in the HTTP layer.

With several workers (`reservation serve --workers N`) each worker writes its values to files in
the directory PROMETHEUS_MULTIPROC_DIR names (prometheus_client's multiprocess mode; serve makes
it fresh at start and removes it at exit, reservation/server/worker_metrics.py), and a scrape
answered by any worker reads every worker's files: one scrape counts the whole service.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# prometheus_client's variable: the directory every worker of one serve writes its values to.
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# With several workers, how often each copies the gauges read from its own state (bodies held,
# streams open) to its file: a scrape sees the other workers' values at most this old.
REFRESH_SECONDS = 1.0


def multiprocess_dir() -> str | None:
    """The shared directory of this process's workers, or None when it serves alone."""
    return os.environ.get(MULTIPROC_DIR) or None


class PerSecond:
    """How many times something happened in each of the last `seconds` seconds (this process):
    the operations page's chart of holds and sales. O(1) per event, a fixed amount of memory."""

    def __init__(self, seconds: int = 300, clock: Callable[[], float] = time.time) -> None:
        self.seconds = seconds
        self.clock = clock
        self._second = [-1] * seconds  # which second each slot counts
        self._count = [0] * seconds

    def add(self, n: int = 1) -> None:
        second = int(self.clock())
        slot = second % self.seconds
        if self._second[slot] != second:
            self._second[slot] = second
            self._count[slot] = 0
        self._count[slot] += n

    def last(self, seconds: int, step: int = 1) -> tuple[int, list[int]]:
        """The second now, and the counts of the `seconds` before it up to it (oldest first),
        summed `step` seconds at a time."""
        now = int(self.clock())
        counts = []
        for second in range(now - min(seconds, self.seconds) + 1, now + 1):
            slot = second % self.seconds
            counts.append(self._count[slot] if self._second[slot] == second else 0)
        summed = [sum(counts[i : i + step]) for i in range(0, len(counts), step)]
        return now, summed


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # Several workers: the directory they share (prometheus_client reads the same variable).
    shared_dir: str | None = field(default_factory=multiprocess_dir)
    # Holds made and payments committed, per second (the chart of /ops).
    holds_per_second: PerSecond = field(default_factory=PerSecond)
    sales_per_second: PerSecond = field(default_factory=PerSecond)

    def __post_init__(self) -> None:
        r = self.registry
        self._reservation_children: dict[str, Counter] = {}
        # What a scrape reads: this process's registry, or every worker's files.
        self.scraped = r
        if self.shared_dir is not None:
            self.scraped = CollectorRegistry()
            MultiProcessCollector(self.scraped, self.shared_dir)  # type: ignore[no-untyped-call]
        self._readers: list[tuple[Gauge, Callable[[], float]]] = []
        self.reservations = Counter(
            "reservation_reservations", "Reserve requests by outcome", ["outcome"], registry=r
        )
        self.releases = Counter(
            "reservation_releases", "Release requests by outcome", ["outcome"], registry=r
        )
        self.webhooks = Counter(
            "reservation_webhook_events",
            "Stripe events by type and outcome",
            ["type", "outcome"],
            registry=r,
        )
        self.checkouts = Counter(
            "reservation_checkouts", "Checkout requests by outcome", ["outcome"], registry=r
        )
        self._outbox_metrics(r)
        self._refund_metrics(r)
        self.expired = Gauge(
            "reservation_expired_holds",
            "Holds that lapsed so far, per pool",
            ["pool"],
            registry=r,
            # Read from Redis when scraped: whichever worker read it last read the truth.
            multiprocess_mode="mostrecent",
        )
        # Waiting-list joins Redis made that MongoDB did not record (or mark left): the
        # buyer's answer stands (Redis decided), the copy a rebuild reads is behind.
        self.waitlist_record_failures = Counter(
            "reservation_waitlist_record_failures",
            "Waiting-list joins or leaves MongoDB failed to record, by operation",
            ["operation"],
            registry=r,
        )
        self.reserve_seconds = Histogram(
            "reservation_reserve_seconds",
            "Time of one reserve against Redis",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._process_gauges(r)
        self.request_seconds = Histogram(
            "reservation_http_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def _refund_metrics(self, r: CollectorRegistry) -> None:
        # Oversold payments' refunds Stripe refused for good (usecases/payment_events.py), by
        # Stripe's error code; and those still refused, read from MongoDB when scraped.
        self.refunds_refused = Counter(
            "reservation_refunds_refused",
            "Refunds of oversold payments Stripe refused for good, by Stripe's error code",
            ["code"],
            registry=r,
        )
        self.refunds_failed = Gauge(
            "reservation_refunds_failed",
            "Oversold payments whose refund is still refused (neither refunded nor settled)",
            registry=r,
            # Read from MongoDB when scraped: whichever worker read it last read the truth.
            multiprocess_mode="mostrecent",
        )

    def _process_gauges(self, r: CollectorRegistry) -> None:
        # With several workers, what each holds adds up over the live ones (livesum).
        # Read when scraped: the app points it at its body budget (reservation/app.py).
        self.body_bytes = Gauge(
            "reservation_request_body_bytes",
            "Bytes of request bodies the workers hold while they arrive",
            registry=r,
            multiprocess_mode="livesum",
        )
        # Read when scraped: the app points them at its stock feed (reservation/app.py).
        self.event_streams = Gauge(
            "reservation_event_streams",
            "Event streams the workers have open",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.stock_feed_reads = Gauge(
            "reservation_stock_feed_reads",
            "Product reads the stock feed's readers made so far (one per watched SKU per tick)",
            registry=r,
            multiprocess_mode="sum",  # a worker that exited made its reads too
        )

    def _outbox_metrics(self, r: CollectorRegistry) -> None:
        # The shop's webhooks (reservation/operations/outbox.py): entries moved from Redis to
        # MongoDB (moved, duplicate, malformed), tries by outcome, events still to deliver.
        self.outbox_relayed = Counter(
            "reservation_outbox_relayed",
            "Outbox entries moved from Redis to MongoDB, by outcome",
            ["outcome"],
            registry=r,
        )
        self.shop_deliveries = Counter(
            "reservation_shop_webhook_deliveries",
            "Shop webhook tries by outcome (delivered, failed)",
            ["outcome"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "reservation_outbox_pending",
            "Shop webhook events not delivered yet (as this process last saw, while it held"
            " the outbox lease)",
            registry=r,
            multiprocess_mode="mostrecent",  # the lease moves: the latest holder's count
        )

    def count_reservation(self, outcome: str) -> None:
        """reservations{outcome} += 1, with the labelled child kept (the hot path)."""
        child = self._reservation_children.get(outcome)
        if child is None:
            child = self._reservation_children[outcome] = self.reservations.labels(outcome)
        child.inc()
        if outcome == "held":
            self.holds_per_second.add()

    def read_when_scraped(self, gauge: Gauge, read: Callable[[], float]) -> None:
        """`gauge` follows `read()` (this process's state). Alone: read at each scrape. With
        several workers a scrape reads files, not functions: the value is copied to this
        worker's file by `refresh`, at each scrape it answers and every REFRESH_SECONDS."""
        if self.shared_dir is None:
            gauge.set_function(read)
        else:
            self._readers.append((gauge, read))
            gauge.set(read())

    def refresh(self) -> None:
        for gauge, read in self._readers:
            gauge.set(read())

    async def keep_fresh(self) -> None:
        """Refresh every REFRESH_SECONDS until cancelled (several workers only)."""
        while self._readers:
            self.refresh()
            await asyncio.sleep(REFRESH_SECONDS)

    def sample(self, name: str, **labels: str) -> float:
        """The sum of every sample `name` whose labels include `labels` (every worker's)."""
        self.refresh()
        return sum(
            sample.value
            for metric in self.scraped.collect()
            for sample in metric.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def render(self) -> bytes:
        self.refresh()
        return generate_latest(self.scraped)
