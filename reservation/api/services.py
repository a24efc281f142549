"""What the app's lifespan builds and every handler uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from persistence.events import StripeEventRepository
from persistence.mongo import Database
from persistence.orders import OrderRepository
from persistence.products import ProductRepository
from reservation.catalog import Catalog
from reservation.idempotency import IdempotencyKeys
from reservation.inventory import Inventory
from reservation.metrics import Metrics
from reservation.scripts import RedisClient
from reservation.settings import Settings


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


def services(request: Request) -> Services:
    state: Services = request.app.state.services
    return state
