"""The app factory: routes, error handlers, and a lifespan that opens the services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware

from reservation.api.bodybudget import BodyBudget
from reservation.api.failures import add_exception_handlers
from reservation.api.products import product_reader
from reservation.api.request_timer import RequestTimer
from reservation.api.routes import ROUTES
from reservation.api.stock_events import stock_frame
from reservation.api.stock_feed import StockFeed
from reservation.metrics import Metrics
from reservation.server.gctuning import tune_after_startup
from reservation.services import open_services
from reservation.settings import Settings

logger = logging.getLogger("reservation")


def create_app(settings: Settings | None = None) -> Starlette:
    """A Starlette app for `settings` (default: from the environment)."""
    settings = settings or Settings.from_env()
    metrics = Metrics()
    # One per process: every request's body draws from it (reservation/api/bodies.py).
    bodies = BodyBudget(settings.max_body_bytes_in_flight)
    metrics.read_when_scraped(metrics.body_bytes, lambda: bodies.held)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not settings.verifies_customers:
            logger.warning(
                "customer ids are not verified: per-customer limits, the hold cap and"
                " Idempotency-Keys trust the customer_id a client sends; set"
                " RESERVATION_CUSTOMER_TOKEN_SECRET (or _PUBLIC_KEY, or"
                " RESERVATION_CUSTOMER_JWKS_URL) so that they bind verified customers",
                extra={"outcome": "customers_unverified"},
            )
        async with open_services(settings, metrics=metrics) as services:
            app.state.services = services
            # One per process: every event stream of a SKU shares its one reader.
            feed = StockFeed(
                product_reader(services), stock_frame, max_streams=settings.max_streams
            )
            app.state.stock_feed = feed
            metrics.read_when_scraped(metrics.event_streams, lambda: feed.streams)
            metrics.read_when_scraped(metrics.stock_feed_reads, lambda: feed.reads)
            # Several workers: this worker's gauges copied to its file for the others' scrapes.
            refresher = asyncio.create_task(metrics.keep_fresh())
            tune_after_startup()
            try:
                yield
            finally:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
                await feed.close()

    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(RequestTimer, metrics=metrics)],
        lifespan=lifespan,
    )
    app.state.bodies = bodies
    app.state.trusted_proxy_header = settings.trusted_proxy_header
    add_exception_handlers(app)
    return app
