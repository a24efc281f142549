"""Request and response bodies of the HTTP API (API.md), as msgspec structs.

msgspec decodes and validates in one pass (strict: no strings for ints, no floats, no unknown
fields) and its JSON Schema feeds the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from reservation.cart import MAX_CART_LINES, MAX_CUSTOMER_ID, MAX_QUANTITY
from reservation.money import MAX_AMOUNT

Name = Annotated[
    str,
    Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$", min_length=1, max_length=64, examples=["tee-black"]),
]
Quantity = Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]
CustomerId = Annotated[
    str, Meta(pattern=rf"^[\x21-\x7e]{{1,{MAX_CUSTOMER_ID}}}$", min_length=1, max_length=128)
]
Currency = Annotated[str, Meta(pattern=r"^[a-z]{3}$", description="ISO 4217, lowercase")]
# A product name is shown to buyers (and on Stripe's page): printable text only, no control
# characters (NUL, CR/LF…), line separators or bidirectional overrides that reorder what is shown.
ProductName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        pattern="^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]+$",
        description="printable text: no control characters or bidirectional overrides",
    ),
]
Money = Annotated[
    int,
    Meta(ge=0, le=MAX_AMOUNT, description="minor units (cents); at most what Stripe accepts"),
]
Stock = Annotated[int, Meta(ge=0, le=10**12)]
Status = Literal["held", "awaiting_payment", "committed", "released", "expired"]
OrderStatusName = Literal[
    "paid", "awaiting_payment", "payment_failed", "refunded", "refunded_oversold"
]


class ProductIn(Struct, forbid_unknown_fields=True):
    name: ProductName
    price: Money
    currency: Currency
    stock: Stock
    pool: Name | None = None  # omitted: the product's current pool, or "default"
    max_per_customer: Annotated[int, Meta(ge=1, le=MAX_QUANTITY)] | None = None


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


class ProductList(Struct):
    data: list[ProductView]


class CartLineIn(Struct, forbid_unknown_fields=True):
    sku: Name
    quantity: Quantity


class ReservationIn(Struct, forbid_unknown_fields=True):
    items: Annotated[list[CartLineIn], Meta(min_length=1, max_length=MAX_CART_LINES)]
    customer_id: CustomerId | None = None


Email = Annotated[
    str,
    Meta(pattern=r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,190}$", max_length=254),
]


class CheckoutIn(Struct, forbid_unknown_fields=True):
    """Either `reservation_id` (a held reservation) or `items` (reserve, then check out)."""

    reservation_id: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    items: Annotated[list[CartLineIn], Meta(min_length=1, max_length=MAX_CART_LINES)] | None = None
    customer_id: CustomerId | None = None
    customer_email: Email | None = None


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
    status: Status
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
    status: OrderStatusName
    items: list[OrderLineView]
    amount_total: int
    currency: str
    customer_email: str | None
    payment_intent: str | None
    created_at: str
    updated_at: str


class OrderList(Struct):
    data: list[OrderView]


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


BODY_TYPES: tuple[type[Struct], ...] = (
    ProductIn,
    ProductView,
    ProductList,
    ReservationIn,
    ReservationView,
    CheckoutIn,
    CheckoutView,
    WebhookAnswer,
    OrderView,
    OrderList,
    ErrorBody,
    Health,
    Readiness,
)

encoder = msgspec.json.Encoder()
