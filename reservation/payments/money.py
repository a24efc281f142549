"""Amounts Stripe accepts, checked before any call to Stripe.

Every amount is an integer in the currency's smallest unit: cents for two-decimal currencies,
the unit itself for zero-decimal ones (¥1 is 1), thousandths for three-decimal ones. Stripe takes
at most eight digits, whatever the currency, so a two-decimal cart stops at 999,999.99 and a
zero-decimal one at 99,999,999; three-decimal amounts must end in 0 (Stripe's partners round to
hundredths).
"""

from __future__ import annotations

from domain.errors import InvalidRequest
from domain.rules import MAX_AMOUNT

ZERO_DECIMAL = frozenset(
    {
        *("bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"),
        *("pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"),
    }
)
THREE_DECIMAL = frozenset(("bhd", "jod", "kwd", "omr", "tnd"))


def decimals(currency: str) -> int:
    if currency in ZERO_DECIMAL:
        return 0
    return 3 if currency in THREE_DECIMAL else 2


def display(amount: int, currency: str) -> str:
    """`amount` minor units as a person reads it: 99999999 eur is "999,999.99 EUR"."""
    places = decimals(currency)
    whole, fraction = divmod(amount, 10**places)
    text = f"{whole:,}" + (f".{fraction:0{places}d}" if places else "")
    return f"{text} {currency.upper()}"


def check_price(price: int, currency: str) -> int:
    """A unit price Stripe can charge in this currency (422 otherwise)."""
    if not 0 <= price <= MAX_AMOUNT:
        raise InvalidRequest(
            f"price must be from 0 to {display(MAX_AMOUNT, currency)} ({MAX_AMOUNT} minor units)",
            field="price",
            max_amount=MAX_AMOUNT,
        )
    if currency in THREE_DECIMAL and price % 10:
        raise InvalidRequest(
            f"{currency.upper()} prices must end in 0 (Stripe charges them to the hundredth)",
            field="price",
        )
    return price


def check_total(total: int, currency: str) -> int:
    """A cart total Stripe accepts in one payment (422 otherwise, before calling Stripe)."""
    if total > MAX_AMOUNT:
        raise InvalidRequest(
            f"the cart's total of {display(total, currency)} is more than one payment may be "
            f"({display(MAX_AMOUNT, currency)})",
            field="items",
            amount_total=total,
            max_amount=MAX_AMOUNT,
            currency=currency,
        )
    return total
