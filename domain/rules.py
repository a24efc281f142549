"""Rules the service and its storage check the same way: SKU and pool names, counts of units.

Defined here once: the validators of the core (reservation/cart.py), the product records of
MongoDB (persistence/products.py), the msgspec schemas and the OpenAPI document all use them.
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
