"""Every route of the HTTP API, in one table: the app serves it, /openapi.json describes it.
The pages (reservation/api/pages.py) come last and stay out of the document.

Each row is an `Operation`: a Starlette route that also carries its summary, parameters, body,
answer and the error classes it may answer with (their `code` and `status_code` come from
domain/errors.py). docs/api.md is the same contract in prose.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta

from domain.errors import (
    AdmissionInvalid,
    AdmissionRequired,
    AdmissionUsed,
    AlreadyCommitted,
    CustomerLimitExceeded,
    CustomerMismatch,
    CustomerRequired,
    CustomerTokenRequired,
    HoldCapReached,
    InsufficientStock,
    InvalidCustomerToken,
    InvalidPayload,
    InvalidRequest,
    InvalidSignature,
    MixedPools,
    NotFound,
    NotOnSale,
    NoWaitingRoom,
    PayloadTooLarge,
    PaymentProviderRefused,
    PaymentProviderUnavailable,
    PoolConflict,
    RateLimited,
    ReplayedSignature,
    RequestTimeout,
    ReservationNotHeld,
    ServerBusy,
    StockBelowCommitted,
    StorageUnavailable,
    TicketNotFound,
    UnknownSku,
    UnsupportedMediaType,
)
from domain.statuses import OrderStatus
from persistence.orders import OrderConflict
from reservation.api import (
    checkout,
    dashboard,
    ops,
    orders,
    products,
    queue,
    reservations,
    stock_events,
    webhook,
)
from reservation.api.openapi import Answer, Operation, Parameter
from reservation.api.pages import PAGES
from reservation.api.refunds import REFUNDS
from reservation.api.schemas import (
    CheckoutIn,
    CheckoutStateView,
    CheckoutView,
    Health,
    IdempotencyKey,
    Name,
    OpsSummary,
    OrderList,
    OrderView,
    ProductIn,
    ProductList,
    ProductView,
    QueueIn,
    Readiness,
    ReservationId,
    ReservationIn,
    ReservationView,
    RoomView,
    Ticket,
    TicketView,
    WebhookAnswer,
)
from reservation.api.waitlist_routes import WAITLIST

SKU = Parameter("sku", "path", Name)
RESERVATION = Parameter(
    "reservation_id", "path", ReservationId, description="the id POST /v1/reservations answered"
)
LAST_EVENT_ID = Parameter(
    "Last-Event-ID",
    "header",
    str,
    description="sent by a reconnecting EventSource; the current value comes at once, whatever",
)
TICKET = Parameter("ticket", "path", Ticket, description="the ticket POST /v1/queue/{sku} answered")
SESSION = Parameter("checkout_session_id", "path", str, description="Stripe's cs_… id")
IDEMPOTENCY_KEY = Parameter(
    "Idempotency-Key",
    "header",
    IdempotencyKey,
    description=(
        "the same key returns the same reservation for 24 hours; scoped by customer_id when "
        "given, shared by all anonymous clients otherwise"
    ),
)
STRIPE_SIGNATURE = Parameter(
    "Stripe-Signature", "header", str, required=True, description="Stripe's signature header"
)
ORDER_STATUS = Parameter("status", "query", OrderStatus, description="only orders in this status")
LIMIT = Parameter(
    "limit",
    "query",
    Annotated[int, Meta(ge=1, le=orders.MAX_LIMIT)],
    description=f"at most this many, newest first (default {orders.DEFAULT_LIMIT})",
)
StripeEvent = dict[str, Any]

# What reading a body may answer (ServerBusy: the process's body budget is spent), a JSON
# one, and any route that reads or writes Redis or MongoDB.
RAW_BODY = (PayloadTooLarge, RequestTimeout, ServerBusy)
BODY = (UnsupportedMediaType, *RAW_BODY, InvalidRequest)
STORAGE = (StorageUnavailable,)
HOLD_REFUSALS = (
    MixedPools,
    CustomerRequired,
    UnknownSku,
    InsufficientStock,
    CustomerLimitExceeded,
    HoldCapReached,
    NotOnSale,
    AdmissionRequired,
    AdmissionInvalid,
    AdmissionUsed,
)
# The routes that hold stock, ask Stripe or join a line: limited per client address and per
# customer id.
LIMITED = (RateLimited,)
# A buyer's routes with a body that may name a customer, and those of one reservation.
CUSTOMER = (InvalidCustomerToken, CustomerTokenRequired, CustomerMismatch)
OWNER = (InvalidCustomerToken,)

ROUTES = [
    Operation(
        "GET",
        "/v1/products",
        products.list_products,
        "Every product, sorted by SKU, with live counters",
        answer=Answer(200, "the catalog", ProductList),
        errors=STORAGE,
    ),
    Operation(
        "GET",
        "/v1/products/{sku}",
        products.get_product,
        "A product with its live reserved / sold / available counts",
        parameters=[SKU],
        answer=Answer(200, "the product", ProductView),
        errors=(InvalidRequest, UnknownSku, *STORAGE),
    ),
    Operation(
        "GET",
        "/v1/products/{sku}/events",
        stock_events.product_events,
        "A product's live stock as Server-Sent Events: `stock` {sku, available, on_sale} at "
        "once, then on every change (at most 4 a second), and a keep-alive comment",
        parameters=[SKU, LAST_EVENT_ID],
        answer=Answer(200, "the event stream", media_type="text/event-stream"),
        errors=(InvalidRequest, UnknownSku, ServerBusy, *STORAGE),
    ),
    Operation(
        "PUT",
        "/v1/products/{sku}",
        products.put_product,
        "Create or update a product and its stock (admin)",
        admin=True,
        parameters=[SKU],
        body=ProductIn,
        answer=Answer(200, "the product", ProductView),
        errors=(*BODY, PoolConflict, StockBelowCommitted, *STORAGE),
    ),
    Operation(
        "POST",
        "/v1/reservations",
        reservations.create_reservation,
        "Hold a cart: every line or none",
        parameters=[IDEMPOTENCY_KEY],
        body=ReservationIn,
        answer=Answer(201, "the hold", ReservationView),
        errors=(*CUSTOMER, *BODY, *HOLD_REFUSALS, *LIMITED, *STORAGE),
        customer=True,
    ),
    Operation(
        "POST",
        "/v1/queue/{sku}",
        queue.join_queue,
        "Join a SKU's waiting room (201), or find your ticket again (200); the body is optional",
        parameters=[SKU],
        body=QueueIn,
        body_required=False,
        answer=Answer(201, "the ticket", TicketView, also=(200,)),
        errors=(*CUSTOMER, *BODY, UnknownSku, NoWaitingRoom, *LIMITED, *STORAGE),
        customer=True,
    ),
    Operation(
        "GET",
        "/v1/queue/{sku}/{ticket}",
        queue.get_ticket,
        "Where a ticket stands: waiting (position, estimated wait, when to ask again), admitted"
        " (the admission token), sold out or expired",
        parameters=[SKU, TICKET],
        answer=Answer(200, "the ticket", TicketView),
        errors=(InvalidRequest, UnknownSku, NoWaitingRoom, TicketNotFound, *STORAGE),
    ),
    Operation(
        "GET",
        "/v1/queue/{sku}",
        queue.get_room,
        "A SKU's waiting room: its line, live admissions and every admission made (admin)",
        admin=True,
        parameters=[SKU],
        answer=Answer(200, "the room", RoomView),
        errors=(InvalidRequest, UnknownSku, NoWaitingRoom, *STORAGE),
    ),
    # The waiting lists' (reservation/api/waitlist_routes.py).
    *WAITLIST,
    Operation(
        "GET",
        "/v1/reservations/{reservation_id}",
        reservations.get_reservation,
        "A reservation as it stands now (a lapsed hold reads as expired)",
        parameters=[RESERVATION],
        answer=Answer(200, "the reservation", ReservationView),
        errors=(*OWNER, NotFound, *STORAGE),
        customer=True,
    ),
    Operation(
        "DELETE",
        "/v1/reservations/{reservation_id}",
        reservations.delete_reservation,
        "Release a hold (idempotent); its open Checkout Session is expired at Stripe first",
        parameters=[RESERVATION],
        answer=Answer(200, "the reservation, released", ReservationView),
        errors=(*OWNER, NotFound, AlreadyCommitted, *STORAGE),
        customer=True,
    ),
    Operation(
        "POST",
        "/v1/checkout",
        checkout.create_checkout,
        "A Stripe Checkout Session for a held reservation, or for a cart reserved now",
        body=CheckoutIn,
        answer=Answer(201, "the session to send the buyer to", CheckoutView),
        customer=True,
        errors=(
            *CUSTOMER,
            *BODY,
            NotFound,
            *HOLD_REFUSALS,
            ReservationNotHeld,
            *LIMITED,
            PaymentProviderRefused,
            PaymentProviderUnavailable,
            *STORAGE,
        ),
    ),
    Operation(
        "GET",
        "/v1/checkout/{checkout_session_id}",
        checkout.get_checkout,
        "Where a Checkout Session stands, for its buyer: the session, its hold, its order "
        "(no customer data)",
        parameters=[SESSION],
        answer=Answer(200, "the session's statuses, lines and total", CheckoutStateView),
        errors=(NotFound, *STORAGE),
    ),
    Operation(
        "POST",
        "/v1/webhooks/stripe",
        webhook.stripe_webhook,
        "Stripe events: the signature is checked on the raw body, then the event is handled",
        parameters=[STRIPE_SIGNATURE],
        body=StripeEvent,
        answer=Answer(200, "handled, ignored, or a duplicate", WebhookAnswer),
        errors=(
            InvalidSignature,
            ReplayedSignature,
            InvalidPayload,
            *RAW_BODY,
            OrderConflict,
            PaymentProviderUnavailable,
            *STORAGE,
        ),
    ),
    Operation(
        "GET",
        "/v1/orders",
        orders.list_orders,
        "Orders, newest first (admin)",
        admin=True,
        parameters=[ORDER_STATUS, LIMIT],
        answer=Answer(200, "the orders", OrderList),
        errors=(InvalidRequest, *STORAGE),
    ),
    Operation(
        "GET",
        "/v1/orders/{checkout_session_id}",
        orders.get_order,
        "The order of a Checkout Session (admin)",
        admin=True,
        parameters=[SESSION],
        answer=Answer(200, "the order", OrderView),
        errors=(NotFound, *STORAGE),
    ),
    *REFUNDS,
    Operation(
        "GET",
        "/v1/ops/summary",
        dashboard.ops_summary,
        "What the operations page shows: stock, holds about to lapse, recent orders, webhook "
        "events and their lag, the Stripe gate, holds and sales per second (admin)",
        admin=True,
        answer=Answer(200, "the summary", OpsSummary),
        errors=STORAGE,
    ),
    Operation(
        "GET",
        "/healthz",
        ops.healthz,
        "The process runs",
        answer=Answer(200, "alive", Health),
    ),
    Operation(
        "GET",
        "/readyz",
        ops.readyz,
        "Redis answers (MongoDB down: still ready, degraded)",
        answer=Answer(200, "ready (degraded: MongoDB does not answer)", Readiness),
        errors=STORAGE,
    ),
    Operation(
        "GET",
        "/metrics",
        ops.metrics,
        "Prometheus metrics of every worker of this serve",
        answer=Answer(200, "Prometheus text format", media_type="text/plain"),
    ),
    Operation(
        "GET",
        "/openapi.json",
        ops.openapi,
        "This document",
        answer=Answer(200, "OpenAPI 3.1"),
    ),
    # The storefront and the operations page: HTML, not part of the API or its document.
    *PAGES,
]
