"""Rules the service, its storage and its HTTP contract state the same way (docs/api.md).

Defined here once: the validators of the core (reservation/core/cart.py, idempotency.py), the
product records of MongoDB (persistence/products.py), the msgspec schemas and so the OpenAPI
document (reservation/api/schemas.py) all use them, so none can drift from another.
"""

from __future__ import annotations

import re

from domain.errors import InvalidRequest

# The pool of a product that names none.
DEFAULT_POOL = "default"
# A SKU or pool name. It never holds a brace (pools are hash tags), ',', '=' or '|' (the
# scripts' separators).
NAME_CHARACTERS = "A-Za-z0-9._-"
MAX_NAME = 64
NAME_REGEX = rf"[{NAME_CHARACTERS}]{{1,{MAX_NAME}}}"
NAME_PATTERN = re.compile(NAME_REGEX)
MAX_STOCK = 10**12

# A product's name, as buyers (and Stripe's page) see it, and its currency (ISO 4217, lowercase
# as Stripe writes it).
MAX_PRODUCT_NAME = 200
CURRENCY_REGEX = r"[a-z]{3}"

# Carts: units of one line, lines of one cart.
MAX_QUANTITY = 1_000_000
MAX_CART_LINES = 100
MAX_CUSTOMER_ID = 128
CUSTOMER_REGEX = rf"[\x21-\x7e]{{1,{MAX_CUSTOMER_ID}}}"  # printable ASCII, no space

# The most Stripe takes in one payment, in the currency's smallest unit (whatever the currency).
MAX_AMOUNT = 99_999_999

# The Idempotency-Key header of POST /v1/reservations.
MAX_KEY = 255
KEY_REGEX = rf"[\x21-\x7e]{{1,{MAX_KEY}}}"  # printable ASCII, no space

# A waiting room (domain/products.py WaitingRoom): its admissions per second, live admissions
# at most, and how long an admission lasts (seconds; 120 when not given).
MAX_ADMIT_PER_SECOND = 100_000
MAX_ACTIVE_ADMISSIONS = 1_000_000
MAX_ADMISSION_SECONDS = 86_400
DEFAULT_ADMISSION_SECONDS = 120
# A queue ticket (the core's new_ticket) and an admission token ("<sku>.<random>"): URL-safe
# base64 of 16 random bytes.
TICKET_REGEX = r"[A-Za-z0-9_-]{22}"
ADMISSION_TOKEN_REGEX = rf"{NAME_REGEX}\.{TICKET_REGEX}"

# A reservation id is "<pool>.<token>" (the core's new_reservation_id): the token is URL-safe
# base64.
TOKEN_REGEX = r"[A-Za-z0-9_-]{16,64}"
RESERVATION_ID_REGEX = rf"{NAME_REGEX}\.{TOKEN_REGEX}"


def check_name(value: object, what: str) -> str:
    """A SKU or pool name: 1-64 characters of A-Za-z0-9._- (never a brace)."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise InvalidRequest(
            f"{what} must be 1 to {MAX_NAME} characters of {NAME_CHARACTERS}",
            field=what,
            value=repr(value),
        )
    return value


def check_stock(value: object, what: str = "stock") -> int:
    """A count of units (or an amount) from 0 to 10^12."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_STOCK:
        raise InvalidRequest(f"{what} must be an integer from 0 to 10^12", field=what)
    return value
