"""Request and response bodies of the HTTP API (docs/api.md), as msgspec structs.

msgspec decodes and validates in one pass (strict: no strings for ints, no floats, no unknown
fields) and its JSON Schema is the schema part of the OpenAPI document (reservation/api/openapi.py).
Limits and patterns are the rules of domain/rules.py and statuses the enums of domain/, which
the core and the storage check and write too, so the document cannot drift from what the code
accepts and answers. This module imports nothing of the project but domain/: below the HTTP
layer nothing imports it (the import-linter contract `no-schemas-below-api`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from domain.queue import TicketStatus
from domain.reservations import ReservationStatus
from domain.rules import (
    ADMISSION_TOKEN_REGEX,
    CURRENCY_REGEX,
    CUSTOMER_REGEX,
    DEFAULT_ADMISSION_SECONDS,
    KEY_REGEX,
    MAX_ACTIVE_ADMISSIONS,
    MAX_ADMISSION_SECONDS,
    MAX_ADMIT_PER_SECOND,
    MAX_AMOUNT,
    MAX_CART_LINES,
    MAX_CUSTOMER_ID,
    MAX_KEY,
    MAX_NAME,
    MAX_PRODUCT_NAME,
    MAX_QUANTITY,
    MAX_STOCK,
    NAME_REGEX,
    RESERVATION_ID_REGEX,
    TICKET_REGEX,
)
from domain.statuses import CheckoutStatus, OrderStatus

# A SKU or pool name.
Name = Annotated[
    str,
    Meta(pattern=f"^{NAME_REGEX}$", min_length=1, max_length=MAX_NAME, examples=["tee-black"]),
]
# The id the server made for a reservation: "<pool>.<random token>".
ReservationId = Annotated[
    str, Meta(pattern=f"^{RESERVATION_ID_REGEX}$", examples=["default.Xk3q9vZ0bW1tR8yL2mN4pA"])
]
IdempotencyKey = Annotated[
    str,
    Meta(
        pattern=f"^{KEY_REGEX}$",
        min_length=1,
        max_length=MAX_KEY,
        description="printable ASCII without spaces; a random UUID per cart",
    ),
]
Quantity = Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]
CustomerId = Annotated[
    str,
    Meta(pattern=f"^{CUSTOMER_REGEX}$", min_length=1, max_length=MAX_CUSTOMER_ID),
]
Currency = Annotated[str, Meta(pattern=f"^{CURRENCY_REGEX}$", description="ISO 4217, lowercase")]
# A product name is shown to buyers (and on Stripe's page): printable text only, no control
# characters (NUL, CR/LF…), line separators or bidirectional overrides that reorder what is shown.
ProductName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_PRODUCT_NAME,
        pattern="^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]+$",
        description="printable text: no control characters or bidirectional overrides",
    ),
]
Money = Annotated[
    int,
    Meta(ge=0, le=MAX_AMOUNT, description="minor units (cents); at most what Stripe accepts"),
]
Stock = Annotated[int, Meta(ge=0, le=MAX_STOCK)]
SaleTime = Annotated[
    datetime,
    Meta(
        tz=True,
        description="ISO 8601 with its offset, e.g. 2026-11-26T16:00:00.000Z (kept to the ms)",
    ),
]


class WaitingRoomIn(Struct, forbid_unknown_fields=True):
    """A SKU's waiting room: buyers queue (POST /v1/queue/{sku}) and are admitted to hold at
    this rate, at most `max_active` admissions live at once, each for `admission_seconds`."""

    admit_per_second: Annotated[int, Meta(ge=1, le=MAX_ADMIT_PER_SECOND)]
    max_active: Annotated[int, Meta(ge=1, le=MAX_ACTIVE_ADMISSIONS)]
    admission_seconds: Annotated[int, Meta(ge=1, le=MAX_ADMISSION_SECONDS)] = (
        DEFAULT_ADMISSION_SECONDS
    )


class WaitingRoomView(Struct):
    admit_per_second: int
    max_active: int
    admission_seconds: int


class ProductIn(Struct, forbid_unknown_fields=True):
    name: ProductName
    price: Money
    currency: Currency
    stock: Stock
    pool: Name | None = None  # omitted: the product's current pool, or "default"
    max_per_customer: Annotated[int, Meta(ge=1, le=MAX_QUANTITY)] | None = None
    # The sale window, by Redis's clock (null or omitted: open on that side).
    sale_starts_at: SaleTime | None = None
    sale_ends_at: SaleTime | None = None
    # null or omitted: no waiting room (a reserve needs no admission token).
    waiting_room: WaitingRoomIn | None = None


class ProductView(Struct):
    sku: str
    name: str
    price: int
    currency: str
    pool: str
    stock: int
    reserved: int
    sold: int
    available: int
    max_per_customer: int | None
    sale_starts_at: str | None
    sale_ends_at: str | None
    on_sale: bool  # inside the sale window now, by Redis's clock
    waiting_room: WaitingRoomView | None
    waitlist: int  # buyers in the waiting list's line (while any, `available` is 0)


class ProductList(Struct):
    data: list[ProductView]


class CartLineIn(Struct, forbid_unknown_fields=True):
    sku: Name
    quantity: Quantity


# What a waiting room's admission answered (GET /v1/queue/{sku}/{ticket}); a text of another
# shape is no admission (403 admission_invalid where a room needs one), so only its length is
# bounded here.
AdmissionToken = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        description=f"the admission_token of an admitted ticket ({ADMISSION_TOKEN_REGEX})",
    ),
]


class ReservationIn(Struct, forbid_unknown_fields=True):
    items: Annotated[list[CartLineIn], Meta(min_length=1, max_length=MAX_CART_LINES)]
    customer_id: CustomerId | None = None
    admission_token: AdmissionToken | None = None  # needed for a SKU whose waiting room is on


# A ticket of a waiting room, as POST /v1/queue/{sku} answered it.
Ticket = Annotated[str, Meta(pattern=f"^{TICKET_REGEX}$")]


class QueueIn(Struct, forbid_unknown_fields=True):
    """POST /v1/queue/{sku}'s body (optional): the buyer, as for a reservation."""

    customer_id: CustomerId | None = None


class TicketView(Struct, omit_defaults=True):
    """A ticket of a waiting room; the admission's two fields only while it is admitted."""

    ticket: str
    status: TicketStatus
    position: int  # 1-based among the tickets waiting; 0 once admitted or expired
    estimated_wait_seconds: int
    poll_after_ms: int  # ask again no sooner than this
    admission_token: str | msgspec.UnsetType = msgspec.UNSET
    admission_expires_at: str | msgspec.UnsetType = msgspec.UNSET


class AdmissionView(Struct):
    ticket: str
    admitted_at: str
    expires_at: str
    used_at: str | None  # when a hold used it (null: not used)
    reservation_id: str | None  # the hold it made


class RoomView(Struct):
    """GET /v1/queue/{sku} (admin): a SKU's waiting room now."""

    sku: str
    waiting_room: WaitingRoomView
    started: bool  # the fair start's shuffle is done
    waiting: int  # tickets in line
    active: int  # admissions live: admitted, not used, not expired
    admitted: int  # admissions ever made
    used: int  # of those, used for a hold
    admissions: list[AdmissionView]  # every admission, oldest first


# What Stripe takes as customer_email: a local part, "@", and a domain with a dot in it
# ("0@0" is refused by Stripe, so it is refused here first, as a 422, not a 502 afterwards).
Email = Annotated[
    str,
    Meta(
        pattern=r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,190}\.[^@\s.\x00-\x1f\x7f]{1,63}$",
        max_length=254,
    ),
]


class CheckoutIn(Struct, forbid_unknown_fields=True):
    """Either `reservation_id` (a held reservation) or `items` (reserve, then check out)."""

    reservation_id: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    items: Annotated[list[CartLineIn], Meta(min_length=1, max_length=MAX_CART_LINES)] | None = None
    customer_id: CustomerId | None = None
    customer_email: Email | None = None
    admission_token: AdmissionToken | None = None  # with `items` of a SKU with a waiting room


class CheckoutView(Struct):
    reservation_id: str
    checkout_session_id: str
    url: str
    expires_at: str


class WebhookAnswer(Struct):
    received: bool


class CartLineView(Struct):
    sku: str
    quantity: int


class ReservationView(Struct):
    id: str
    status: ReservationStatus
    items: list[CartLineView]
    customer_id: str | None
    expires_at: str
    checkout_session_id: str | None


class OrderLineView(Struct):
    sku: str
    quantity: int
    unit_amount: int


class OrderView(Struct):
    checkout_session_id: str
    reservation_id: str
    status: OrderStatus
    items: list[OrderLineView]
    amount_total: int
    currency: str
    customer_email: str | None
    payment_intent: str | None
    created_at: str
    updated_at: str


class OrderList(Struct):
    data: list[OrderView]


class CheckoutStateView(Struct):
    """What the buyer of a Checkout Session may see of it (GET /v1/checkout/{id}): statuses,
    what was bought and the total; nothing about the customer."""

    checkout_session_id: str
    session_status: CheckoutStatus
    reservation_status: ReservationStatus | None  # None: Redis no longer knows the hold
    hold_expires_at: str | None
    order_status: OrderStatus | None  # None: no order yet (the payment's webhook is awaited)
    items: list[CartLineView]
    amount_total: int | None
    currency: str | None


class SkuSummary(Struct):
    sku: str
    name: str
    pool: str
    total: int
    held: int
    sold: int
    available: int
    max_per_customer: int | None


class LapsingHold(Struct):
    reservation_id: str
    items: list[CartLineView]
    expires_at: str
    seconds_left: float


class HoldsSummary(Struct):
    live: int
    lapsing: list[LapsingHold]  # the live holds that lapse first, soonest first


class OrdersSummary(Struct):
    by_status: dict[str, int]
    recent: list[OrderView]  # newest first


class WebhooksSummary(Struct):
    received: int
    processed: int
    failed: int  # events whose handler failed at least once
    failing: int  # of those, still unprocessed (Stripe delivers them again)
    pending: int  # received, not processed, no failure recorded (in flight)
    last_received_at: str | None
    # Seconds from Stripe creating an event to this service receiving it (whole seconds: an
    # event's `created` is), over the last events received.
    delivery_lag_p50: float | None
    delivery_lag_max: float | None
    # Seconds from receiving an event to its handler finishing, over the same events.
    handling_p50: float | None
    handling_max: float | None
    sample: int


class GateSummary(Struct):
    configured: bool
    concurrency: int
    in_flight: int
    saturated: bool
    checkouts_unavailable: int  # checkouts answered 503 payment_provider_unavailable
    answers_503: int  # every 503 the serve's workers answered (reservation/metrics.py)


class RatesSummary(Struct):
    step_seconds: int
    until: str
    holds: list[int]  # holds made per step, oldest first
    sales: list[int]  # payments committed per step, oldest first


class ShopWebhooksSummary(Struct):
    configured: bool  # RESERVATION_SHOP_WEBHOOK_URL set
    pending: int
    failing: int  # pending, and at least one try failed
    delivered: int
    oldest_pending_seconds: float | None  # since the oldest pending event happened


class OpsSummary(Struct):
    """GET /v1/ops/summary: the operations page's data. Counters, holds, orders and webhook
    events are read from Redis and MongoDB (every process sees the same); the Stripe gate and
    the rates are those of the process that answers."""

    generated_at: str
    hold_seconds: float
    products: list[SkuSummary]
    holds: HoldsSummary
    orders: OrdersSummary
    webhooks: WebhooksSummary
    shop_webhooks: ShopWebhooksSummary
    stripe_gate: GateSummary
    rates: RatesSummary
    # False: no key of customer tokens is configured, so customer ids are whatever clients send.
    customer_ids_verified: bool


class ErrorBody(Struct):
    error: str
    message: str
    details: dict[str, Any]


class Health(Struct):
    status: str


class Readiness(Struct):
    status: str
    redis: str
    mongodb: str
    degraded: bool  # MongoDB does not answer (reserves and product reads still work)


encoder = msgspec.json.Encoder()
