"""Everything one process of the service opens from its Settings, built and closed in one place.

`open_services(settings)` is the one way in: the app's lifespan, `reservation sweep`,
`reconcile` and `set-stock`, the demo and the tests all open the service with it. It starts
the embedded MongoDB when MONGODB_URI is unset, opens the Redis, MongoDB and Stripe clients,
builds the repositories and the core's services, checks MongoDB's indexes, restores the SKUs
Redis is missing (RESERVATION_RECONCILE_ON_START) and starts the background sweeper
(RESERVATION_SWEEP_SECONDS), the recovery check and the shop's webhook outbox; leaving it
stops and closes all of that in the reverse order, the embedded MongoDB last, whatever ended
the block.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import stripe
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError

from domain.errors import ReservationError
from persistence.attempts import CheckoutAttempts
from persistence.checkouts import CheckoutRepository
from persistence.events import StripeEventRepository
from persistence.mongo import Database, connect, ensure_indexes
from persistence.orders import OrderRepository
from persistence.outbox import ShopEventOutbox
from persistence.products import ProductRepository
from persistence.refunds import FailedRefunds, PendingRefunds
from persistence.waitlist import WaitlistJoins
from reservation.core.deliveries import SeenDeliveries
from reservation.core.idempotency import IdempotencyKeys
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace
from reservation.core.outbox import OutboxLease, OutboxList
from reservation.core.ratelimit import RateLimit, RateLimiter
from reservation.customers.tokens import CustomerTokens
from reservation.lua.library import RedisClient
from reservation.metrics import Metrics
from reservation.operations import outbox
from reservation.operations.recovery import Recovery, watch
from reservation.operations.sweeper import run_periodically
from reservation.operations.waitlist_rebuild import WaitlistRecords
from reservation.payments.expiry import SessionExpiry
from reservation.payments.gate import StripeGate, stripe_client
from reservation.payments.session_maker import SessionMaker
from reservation.settings import Settings
from reservation.stores.connection_queue import QueuedCluster, QueuedRedis
from reservation.stores.embedded import EmbeddedMongo, embedded_redis
from reservation.usecases.catalog import Catalog
from reservation.usecases.checkout import CheckoutService
from reservation.usecases.hold import Hold
from reservation.usecases.payment_events import PaymentEvents
from reservation.usecases.waitlist import Waitlist
from reservation.usecases.webhooks import StripeWebhooks

logger = logging.getLogger("reservation")

# The names of the background tasks (asyncio.all_tasks() shows them).
SWEEPER_TASK = "reservation.sweeper"
RECOVERY_TASK = "reservation.recovery"
OUTBOX_TASK = "reservation.outbox"


@dataclass(frozen=True, slots=True)
class Services:
    """What `open_services` opened: the clients, repositories and services of one process."""

    settings: Settings
    redis: RedisClient
    inventory: Inventory
    mongo: Any  # AsyncMongoClient
    db: Database
    products: ProductRepository
    orders: OrderRepository
    events: StripeEventRepository
    catalog: Catalog
    idempotency: IdempotencyKeys
    metrics: Metrics
    checkouts: CheckoutRepository
    stripe: stripe.StripeClient
    gate: StripeGate
    hold: Hold
    checkout: CheckoutService
    webhooks: StripeWebhooks
    expiry: SessionExpiry
    recovery: Recovery
    rate_limiter: RateLimiter
    customers: CustomerTokens
    outbox: outbox.ShopOutbox
    waitlist: Waitlist


def redis_client(settings: Settings) -> RedisClient:
    """A client of REDIS_URL (a cluster with REDIS_CLUSTER), else an in-process fakeredis.

    Its connections are a pool of RESERVATION_REDIS_POOL_SIZE that queues: a command that
    finds them all busy waits for one (reservation/stores/connection_queue.py)."""
    if settings.redis_url is None:
        return embedded_redis()
    # A Redis that hangs (or a connection that never opens) is a 503 within this bound.
    timeouts = {
        "socket_timeout": settings.redis_timeout_seconds,
        "socket_connect_timeout": settings.redis_timeout_seconds,
    }
    if settings.redis_cluster:
        return QueuedCluster.from_url(
            settings.redis_url, pool_size=settings.redis_pool_size, **timeouts
        )
    pool = ConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        # A pooled connection that died with a restarted Redis is opened again and the
        # command sent again (every script is idempotent by its ids); a timeout is not.
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2, (ConnectionError,)),
        **timeouts,
    )
    return QueuedRedis.from_pool(pool)  # the client owns the pool: aclose() closes it


def new_inventory(settings: Settings, redis: RedisClient) -> Inventory:
    """The Redis stock core as the settings configure it."""
    return Inventory(
        redis,
        keys=KeySpace(settings.key_prefix),
        hold_seconds=settings.hold_seconds,
        sold_out_seconds=settings.sold_out_cache_seconds,
        read_cache_seconds=settings.read_cache_seconds,
        require_customer=settings.require_customer,
        max_holds_per_customer=settings.max_holds_per_customer,
        offer_seconds=settings.offer_seconds,
    )


def new_rate_limiter(settings: Settings, redis: RedisClient) -> RateLimiter:
    """The limits per client address and per customer id, as the settings configure them."""
    return RateLimiter(
        redis,
        keys=KeySpace(settings.key_prefix),
        per_ip=RateLimit(settings.ip_rate_limit, settings.ip_rate_window_seconds),
        per_customer=RateLimit(settings.customer_rate_limit, settings.customer_rate_window_seconds),
    )


@asynccontextmanager
async def open_inventory(settings: Settings) -> AsyncIterator[Inventory]:
    """Redis alone (the `stock` command): the stock core, its client closed afterwards."""
    redis = redis_client(settings)
    try:
        yield new_inventory(settings, redis)
    finally:
        await redis.aclose()


@asynccontextmanager
async def open_services(
    settings: Settings, *, metrics: Metrics | None = None
) -> AsyncIterator[Services]:
    """Open everything `settings` configures; close it all when the block ends.

    `metrics` is the app's when its middleware already counts into one. A store that is down
    at start is logged, not raised: the service starts anyway, /readyz says what is down and
    requests answer 503 meanwhile.
    """
    async with AsyncExitStack() as stack:
        mongodb_uri = settings.mongodb_uri
        if mongodb_uri is None:
            # Started in this thread, so a signal or a cancellation cannot leave it running
            # unregistered: from here on the stack stops it, whatever ends the block.
            embedded = EmbeddedMongo(Path(settings.data_dir))
            stack.callback(embedded.stop)
            mongodb_uri = embedded.start()
        redis = redis_client(settings)
        stack.push_async_callback(redis.aclose)
        mongo, db = connect(mongodb_uri, settings.mongodb_database)
        stack.push_async_callback(mongo.close)
        stripe_api, stripe_http = stripe_client(settings)
        stack.push_async_callback(stripe_http.close_async)
        shop_http = httpx.AsyncClient(timeout=settings.shop_webhook_timeout_seconds)
        stack.push_async_callback(shop_http.aclose)
        services = _build(settings, redis, mongo, db, stripe_api, metrics or Metrics(), shop_http)
        await _check_on_start(services)
        if settings.sweep_seconds > 0:
            sweeper = asyncio.create_task(
                run_periodically(services, settings.sweep_seconds), name=SWEEPER_TASK
            )
            stack.push_async_callback(_stop, sweeper)
        if settings.rebuild_check_seconds > 0:
            watcher = asyncio.create_task(
                watch(services.recovery, settings.rebuild_check_seconds), name=RECOVERY_TASK
            )
            stack.push_async_callback(_stop, watcher)
        if settings.outbox_interval_seconds > 0:
            relay = asyncio.create_task(
                outbox.run_periodically(services.outbox, settings.outbox_interval_seconds),
                name=OUTBOX_TASK,
            )
            stack.push_async_callback(_stop, relay)
        yield services


def _build(
    settings: Settings,
    redis: RedisClient,
    mongo: Any,
    db: Database,
    stripe_api: stripe.StripeClient,
    metrics: Metrics,
    shop_http: httpx.AsyncClient,
) -> Services:
    inventory = new_inventory(settings, redis)
    products = ProductRepository(db)
    orders = OrderRepository(db)
    checkouts = CheckoutRepository(db)
    events = StripeEventRepository(db)
    gate = StripeGate.from_settings(settings, redis)
    expiry = SessionExpiry(checkouts, stripe_api, gate)
    joins = WaitlistJoins(db)
    recovery = new_recovery(settings, inventory, products, orders, db, joins)
    idempotency = IdempotencyKeys(redis, inventory.keys)
    rate_limiter = new_rate_limiter(settings, redis)
    hold = Hold(
        inventory=inventory, idempotency=idempotency, rate_limiter=rate_limiter, metrics=metrics
    )
    return Services(
        settings=settings,
        redis=redis,
        inventory=inventory,
        mongo=mongo,
        db=db,
        products=products,
        orders=orders,
        events=events,
        catalog=Catalog(products, inventory),
        idempotency=idempotency,
        metrics=metrics,
        checkouts=checkouts,
        stripe=stripe_api,
        gate=gate,
        hold=hold,
        checkout=CheckoutService(
            settings=settings,
            expiry=expiry,
            inventory=inventory,
            products=products,
            checkouts=checkouts,
            sessions=SessionMaker(settings, CheckoutAttempts(db), checkouts, stripe_api, gate),
            hold=hold,
            rate_limiter=rate_limiter,
            metrics=metrics,
        ),
        webhooks=new_webhooks(
            settings, db, stripe_api, gate, metrics, inventory, orders, checkouts, products, events
        ),
        expiry=expiry,
        recovery=recovery,
        rate_limiter=rate_limiter,
        customers=CustomerTokens(settings),
        outbox=new_outbox(settings, inventory, db, metrics, shop_http),
        waitlist=Waitlist(inventory, joins, rate_limiter, metrics),
    )


def new_recovery(
    settings: Settings,
    inventory: Inventory,
    products: ProductRepository,
    orders: OrderRepository,
    db: Database,
    joins: WaitlistJoins,
) -> Recovery:
    """The self-rebuild of what Redis lost (counters and waiting lists) from MongoDB, started
    by any request that finds counters missing when the periodic check is on."""
    records = WaitlistRecords(joins, ShopEventOutbox(db))
    recovery = Recovery(settings, inventory, products, orders, records)
    if settings.rebuild_check_seconds > 0:
        inventory.pools.on_lost = recovery.notice_loss
    return recovery


def new_outbox(
    settings: Settings,
    inventory: Inventory,
    db: Database,
    metrics: Metrics,
    shop_http: httpx.AsyncClient,
) -> outbox.ShopOutbox:
    """The relay of the pools' outbox lists to MongoDB and the delivery to the shop."""
    return outbox.ShopOutbox(
        settings=settings,
        entries=OutboxList(inventory.client, inventory.keys),
        lease=OutboxLease(inventory.client, inventory.keys, settings.outbox_lease_seconds),
        events=ShopEventOutbox(db),
        pools=inventory.pools,
        metrics=metrics,
        http=shop_http,
    )


def new_webhooks(
    settings: Settings,
    db: Database,
    stripe_api: stripe.StripeClient,
    gate: StripeGate,
    metrics: Metrics,
    inventory: Inventory,
    orders: OrderRepository,
    checkouts: CheckoutRepository,
    products: ProductRepository,
    events: StripeEventRepository,
) -> StripeWebhooks:
    """The webhook use case, and the steps of its handlers."""
    payments = PaymentEvents(
        settings=settings,
        inventory=inventory,
        orders=orders,
        checkouts=checkouts,
        pending_refunds=PendingRefunds(db),
        failed_refunds=FailedRefunds(db),
        stripe=stripe_api,
        gate=gate,
        metrics=metrics,
    )
    return StripeWebhooks(
        settings=settings,
        events=events,
        deliveries=SeenDeliveries(inventory.client, inventory.keys),
        checkouts=checkouts,
        products=products,
        payments=payments,
        metrics=metrics,
    )


async def _check_on_start(services: Services) -> None:
    """MongoDB's indexes, and the catalog SKUs Redis is missing put back."""
    try:
        await ensure_indexes(services.db)
        if services.settings.reconcile_on_start:
            await services.recovery.rebuild()
    except ReservationError as exc:
        logger.error("start-up checks failed: %s", exc.message)


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait until it has stopped, before its clients close."""
    task.cancel()
    await asyncio.wait({task})
