"""Input checks of the core (docs/api.md): quantities, carts, customer ids. Their limits, and
the rules of SKU and pool names and counts of units, are domain/rules.py's."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from domain.errors import InvalidRequest
from domain.reservations import CartLine
from domain.rules import CUSTOMER_REGEX, MAX_CART_LINES, MAX_CUSTOMER_ID, MAX_QUANTITY, check_name

CUSTOMER_PATTERN = re.compile(CUSTOMER_REGEX)

CartInput = Iterable[CartLine | tuple[str, int] | Mapping[str, object]]


def check_quantity(value: object, what: str = "quantity") -> int:
    # bool is an int in Python; a cart line of True units is a mistake, not 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(f"{what} must be an integer", field=what)
    if not 1 <= value <= MAX_QUANTITY:
        raise InvalidRequest(f"{what} must be between 1 and {MAX_QUANTITY}", field=what)
    return value


def check_customer(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not CUSTOMER_PATTERN.fullmatch(value):
        raise InvalidRequest(
            f"customer_id must be 1 to {MAX_CUSTOMER_ID} printable ASCII characters",
            field="customer_id",
        )
    return value


def _line(raw: CartLine | tuple[str, int] | Mapping[str, object]) -> tuple[object, object]:
    if isinstance(raw, CartLine):
        return raw.sku, raw.quantity
    if isinstance(raw, Mapping):
        return raw.get("sku"), raw.get("quantity")
    if isinstance(raw, tuple) and len(raw) == 2:
        return raw[0], raw[1]
    raise InvalidRequest("a cart line is a sku and a quantity", field="items")


class Cart(tuple[CartLine, ...]):
    """Cart lines normalize_cart validated and summed: handed to it again, taken as they are
    (the API normalizes a body's cart before the sold-out memory and the rate limits, and the
    inventory need not do it twice)."""

    __slots__ = ()


def normalize_cart(items: CartInput) -> Cart:
    """Validated cart lines, the same SKU summed into one line, first-seen order kept."""
    if type(items) is Cart:
        return items
    if isinstance(items, (str, bytes, Mapping)):
        raise InvalidRequest("items must be a list of cart lines", field="items")
    lines = list(items)
    if not 1 <= len(lines) <= MAX_CART_LINES:
        raise InvalidRequest(f"a cart has 1 to {MAX_CART_LINES} lines", field="items")
    summed: dict[str, int] = {}
    for raw in lines:
        sku_value, quantity_value = _line(raw)
        sku = check_name(sku_value, "sku")
        summed[sku] = summed.get(sku, 0) + check_quantity(quantity_value)
    for sku, quantity in summed.items():
        check_quantity(quantity, f"total quantity of {sku}")
    return Cart(CartLine(sku, quantity) for sku, quantity in summed.items())
