"""GET /v1/ops/summary (admin): everything the operations page at /ops shows, in one answer.

Counters, holds, orders and webhook events come from Redis and MongoDB, so every process
answers the same; the Stripe gate's counts of answers come from the metrics (every worker of
the serve, like /metrics); the rest of the gate and the per-second rates are the answering
process's own.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from domain.products import utc_text
from domain.rules import DEFAULT_POOL
from persistence.events import EventTimes
from reservation.api.auth import require_admin
from reservation.api.bodies import json_response
from reservation.api.orders import order_view
from reservation.api.schemas import (
    CartLineView,
    GateSummary,
    HoldsSummary,
    LapsingHold,
    OpsSummary,
    OrdersSummary,
    RatesSummary,
    ShopWebhooksSummary,
    SkuSummary,
    WebhooksSummary,
)
from reservation.api.services import Services, services
from reservation.core.inventory import Inventory
from reservation.core.redis_errors import storage_errors
from reservation.lua._pool import decode_cart

LAPSING_HOLDS = 10  # the holds that lapse first, listed
RECENT_ORDERS = 15
RECENT_EVENTS = 200  # the lags are measured over these
RATE_SECONDS = 300  # the chart: the last five minutes, second by second
RATE_STEP = 1


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def lapsing_holds(inventory: Inventory, limit: int) -> HoldsSummary:
    """Live holds (every pool) and the `limit` that lapse first. A hold is a member
    "<id>|<items>|<customer>" of its pool's `holds` sorted set, scored by its expiry in ms."""
    now_ms = int(time.time() * 1000)
    live = 0
    found: list[tuple[float, str, str]] = []
    async with storage_errors():
        for pool in await inventory.pools.stocked():
            key = inventory.keys.pool(pool).holds
            live += await inventory.client.zcount(key, now_ms, "+inf")
            members: list[Any] = await inventory.client.zrangebyscore(
                key, now_ms, "+inf", start=0, num=limit, withscores=True
            )
            for member, score in members:  # (member, score) pairs: withscores
                reservation_id, _, rest = _text(member).partition("|")
                items, _, _ = rest.partition("|")
                found.append((float(score), reservation_id, items))
    found.sort()
    lapsing = [
        LapsingHold(
            reservation_id=reservation_id,
            items=[CartLineView(line.sku, line.quantity) for line in decode_cart(items)],
            expires_at=utc_text(datetime.fromtimestamp(score / 1000, UTC)),
            seconds_left=round(max(score - now_ms, 0) / 1000, 1),
        )
        for score, reservation_id, items in found[:limit]
    ]
    return HoldsSummary(live=live, lapsing=lapsing)


def _seconds(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return round(statistics.median(values), 3), round(max(values), 3)


async def webhooks_summary(state: Services) -> WebhooksSummary:
    counts, recent = await asyncio.gather(state.events.counts(), state.events.recent(RECENT_EVENTS))
    return _webhooks(counts.received, counts.processed, counts.failed, counts.failing, recent)


def _webhooks(
    received: int, processed: int, failed: int, failing: int, recent: list[EventTimes]
) -> WebhooksSummary:
    lags = [
        max(event.received_at.timestamp() - event.created, 0.0)
        for event in recent
        if event.created is not None
    ]
    handling = [
        (event.processed_at - event.received_at).total_seconds()
        for event in recent
        if event.processed_at is not None
    ]
    lag_p50, lag_max = _seconds(lags)
    handling_p50, handling_max = _seconds(handling)
    return WebhooksSummary(
        received=received,
        processed=processed,
        failed=failed,
        failing=failing,
        pending=max(received - processed - failing, 0),
        last_received_at=utc_text(recent[0].received_at) if recent else None,
        delivery_lag_p50=lag_p50,
        delivery_lag_max=lag_max,
        handling_p50=handling_p50,
        handling_max=handling_max,
        sample=len(recent),
    )


async def shop_webhooks_summary(state: Services) -> ShopWebhooksSummary:
    counts = await state.outbox.events.counts()
    oldest = counts.oldest_pending_ms
    return ShopWebhooksSummary(
        configured=state.settings.shop_webhook_url is not None,
        pending=counts.pending,
        failing=counts.failing,
        delivered=counts.delivered,
        oldest_pending_seconds=(
            None if oldest is None else round(max(time.time() - oldest / 1000, 0.0), 1)
        ),
    )


def gate_summary(state: Services) -> GateSummary:
    gate = state.gate
    concurrency = state.settings.stripe_concurrency
    in_flight = gate.in_flight
    metrics = state.metrics
    return GateSummary(
        configured=gate.configured,
        concurrency=concurrency,
        in_flight=in_flight,
        saturated=gate.saturated,
        checkouts_unavailable=int(
            metrics.sample("reservation_checkouts_total", outcome="payment_provider_unavailable")
        ),
        answers_503=int(metrics.sample("reservation_http_request_seconds_count", status="503")),
    )


def rates_summary(state: Services) -> RatesSummary:
    until, holds = state.metrics.holds_per_second.last(RATE_SECONDS, RATE_STEP)
    _, sales = state.metrics.sales_per_second.last(RATE_SECONDS, RATE_STEP)
    return RatesSummary(
        step_seconds=RATE_STEP,
        until=utc_text(datetime.fromtimestamp(until, UTC)),
        holds=holds,
        sales=sales,
    )


async def ops_summary(request: Request) -> Response:
    state = services(request)
    require_admin(request, state.settings.admin_token)
    products, holds, recent_orders, by_status, webhooks, shop_webhooks = await asyncio.gather(
        state.catalog.list(),
        lapsing_holds(state.inventory, LAPSING_HOLDS),
        state.orders.list(limit=RECENT_ORDERS),
        state.orders.count_by_status(),
        webhooks_summary(state),
        shop_webhooks_summary(state),
    )
    summary = OpsSummary(
        generated_at=utc_text(datetime.now(UTC)),
        hold_seconds=state.settings.hold_seconds,
        products=[
            SkuSummary(
                sku=product.sku,
                name=product.spec.name,
                pool=product.spec.pool or DEFAULT_POOL,
                total=product.spec.stock,
                held=product.reserved,
                sold=product.sold,
                available=product.available,
                max_per_customer=product.spec.max_per_customer,
            )
            for product in products
        ],
        holds=holds,
        orders=OrdersSummary(
            by_status=by_status, recent=[order_view(order) for order in recent_orders]
        ),
        webhooks=webhooks,
        shop_webhooks=shop_webhooks,
        stripe_gate=gate_summary(state),
        rates=rates_summary(state),
        customer_ids_verified=state.settings.verifies_customers,
    )
    return json_response(summary)
