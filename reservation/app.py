"""The app factory: routes, error handlers, and a lifespan that owns every client."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from starlette.applications import Starlette
from starlette.middleware import Middleware

from persistence.checkouts import CheckoutRepository
from persistence.events import StripeEventRepository
from persistence.mongo import connect, ensure_indexes
from persistence.orders import OrderRepository
from persistence.products import ProductRepository
from persistence.refunds import PendingRefunds
from reservation.api.failures import add_exception_handlers
from reservation.api.routes import ROUTES
from reservation.api.services import Services
from reservation.catalog import Catalog
from reservation.checkout import CheckoutService
from reservation.embedded import EmbeddedMongo, embedded_redis
from reservation.errors import ReservationError
from reservation.expiry import SessionExpiry
from reservation.idempotency import IdempotencyKeys
from reservation.inventory import Inventory
from reservation.keys import KeySpace
from reservation.metrics import Metrics, RequestTimer
from reservation.payments import StripeGate
from reservation.payments import stripe_client as stripe_client_for
from reservation.reconcile import reconcile, sold_statuses
from reservation.scripts import RedisClient
from reservation.settings import Settings
from reservation.sweeper import run_periodically
from reservation.webhooks import WebhookHandlers

logger = logging.getLogger("reservation")
GC_YOUNG_THRESHOLD = 20_000

REDIS_MAX_CONNECTIONS = 1024
# A request that finds every connection busy waits this long for one, then answers 503: a
# spike of clients queues for Redis instead of failing at once.
REDIS_POOL_WAIT_SECONDS = 5.0


def redis_client(settings: Settings, max_connections: int = REDIS_MAX_CONNECTIONS) -> RedisClient:
    if settings.redis_url is None:
        return embedded_redis()
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url, max_connections=max_connections)
    pool = BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=max_connections, timeout=REDIS_POOL_WAIT_SECONDS
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


def create_app(settings: Settings | None = None) -> Starlette:
    """A Starlette app for `settings` (default: from the environment)."""
    settings = settings or Settings.from_env()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            mongodb_uri = settings.mongodb_uri
            if mongodb_uri is None:
                embedded = EmbeddedMongo(Path(settings.data_dir))
                mongodb_uri = embedded.start()
                stack.callback(embedded.stop)
            redis = redis_client(settings)
            stack.push_async_callback(redis.aclose)
            mongo, db = connect(mongodb_uri, settings.mongodb_database)
            stack.push_async_callback(mongo.close)
            keys = KeySpace(settings.key_prefix)
            inventory = Inventory(
                redis,
                keys=keys,
                hold_seconds=settings.hold_seconds,
                sold_out_seconds=settings.sold_out_cache_seconds,
                read_cache_seconds=settings.read_cache_seconds,
                require_customer=settings.require_customer,
            )
            product_repository = ProductRepository(db)
            order_repository = OrderRepository(db)
            checkouts = CheckoutRepository(db)
            events = StripeEventRepository(db)
            stripe_client, stripe_http = stripe_client_for(settings)
            stack.push_async_callback(stripe_http.close_async)
            gate = StripeGate.from_settings(settings)
            app.state.services = services = Services(
                settings=settings,
                redis=redis,
                inventory=inventory,
                mongo=mongo,
                db=db,
                products=product_repository,
                orders=order_repository,
                events=events,
                catalog=Catalog(product_repository, inventory),
                idempotency=IdempotencyKeys(redis, keys),
                metrics=metrics,
                checkouts=checkouts,
                stripe=stripe_client,
                gate=gate,
                checkout=CheckoutService(
                    settings=settings,
                    inventory=inventory,
                    products=product_repository,
                    checkouts=checkouts,
                    stripe_client=stripe_client,
                    gate=gate,
                ),
                webhooks=WebhookHandlers(
                    settings=settings,
                    inventory=inventory,
                    orders=order_repository,
                    checkouts=checkouts,
                    events=events,
                    pending_refunds=PendingRefunds(db),
                    stripe=stripe_client,
                    gate=gate,
                    metrics=metrics,
                ),
                expiry=SessionExpiry(checkouts, stripe_client, gate),
            )
            try:
                await ensure_indexes(db)
                if settings.reconcile_on_start:
                    restored = await reconcile(
                        inventory,
                        product_repository,
                        order_repository,
                        only_missing=True,
                        sold_statuses=sold_statuses(settings),
                    )
                    if restored:
                        logger.warning("restored %d SKUs missing from Redis", len(restored))
            except ReservationError as exc:
                # Start anyway: /readyz says what is down, and requests answer 503 meanwhile.
                logger.error("start-up checks failed: %s", exc.message)
            # The app's long-lived objects never need collecting: freeze them out of the
            # collector's way, and collect the young generation less often (the hot paths make
            # short-lived objects in bursts, and each collection walks them all).
            gc.collect()
            gc.freeze()
            gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
            if settings.sweep_seconds > 0:
                task = asyncio.create_task(run_periodically(services, settings.sweep_seconds))
                stack.callback(task.cancel)
            yield

    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(RequestTimer, metrics=metrics)],
        lifespan=lifespan,
    )
    add_exception_handlers(app)
    return app
