"""What the app's lifespan builds and every handler uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe
from starlette.requests import Request

from persistence.checkouts import CheckoutRepository
from persistence.events import StripeEventRepository
from persistence.mongo import Database
from persistence.orders import OrderRepository
from persistence.products import ProductRepository
from reservation.catalog import Catalog
from reservation.checkout import CheckoutService
from reservation.expiry import SessionExpiry
from reservation.idempotency import IdempotencyKeys
from reservation.inventory import Inventory
from reservation.metrics import Metrics
from reservation.payments import StripeGate
from reservation.scripts import RedisClient
from reservation.settings import Settings
from reservation.webhooks import WebhookHandlers


@dataclass
class Services:
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
    checkout: CheckoutService
    webhooks: WebhookHandlers
    expiry: SessionExpiry


def services(request: Request) -> Services:
    state: Services = request.app.state.services
    return state
