"""The Stripe Checkout Session of a reservation: its cart priced from the catalog, its
parameters, when it expires, and the record kept of it once Stripe made it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import stripe
from stripe.params.checkout import SessionCreateParams

from domain import errors
from domain.reservations import CartLine, Reservation
from domain.statuses import CheckoutStatus
from persistence.checkouts import Checkout
from persistence.products import ProductRepository
from reservation.payments import session_metadata
from reservation.payments.money import check_total
from reservation.payments.session_metadata import PaidLine

# Stripe accepts expires_at from 30 minutes to 24 hours ahead; keep clear of both edges.
MIN_SESSION = timedelta(minutes=30)
MAX_SESSION = timedelta(hours=24)
MARGIN = timedelta(minutes=2)
SESSION_STATUS = {
    "open": CheckoutStatus.OPEN,
    "complete": CheckoutStatus.COMPLETE,
    "expired": CheckoutStatus.EXPIRED,
}


@dataclass(frozen=True, slots=True)
class PricedCart:
    """Each line with its catalog price and name, in the cart's one currency."""

    lines: list[tuple[PaidLine, str]]
    currency: str

    @property
    def amount(self) -> int:
        return sum(line.quantity * line.unit_amount for line, _ in self.lines)


async def price(products: ProductRepository, items: Iterable[CartLine]) -> PricedCart:
    """The cart priced from the catalog: one currency, and a total Stripe accepts."""
    cart = list(items)
    catalog = await products.get_many(line.sku for line in cart)
    priced = []
    for line in cart:
        product = catalog.get(line.sku)
        if product is None:
            raise errors.UnknownSku(f"{line.sku} is not in the catalog", sku=line.sku)
        priced.append((PaidLine(line.sku, line.quantity, product.price), product.name))
    currencies = {catalog[line.sku].currency for line in cart}
    if len(currencies) != 1:
        raise errors.InvalidRequest(
            "a cart can only be paid in one currency", currencies=sorted(currencies)
        )
    currency = currencies.pop()
    check_total(sum(line.quantity * line.unit_amount for line, _ in priced), currency)
    return PricedCart(priced, currency)


def session_expiry(reservation: Reservation, now: datetime) -> datetime:
    """30 min + margin past the end of the hold, so at least max(hold expiry, now + 30 min +
    margin), and within Stripe's 24 hours.

    It depends on the reservation only, not on the clock: a retried checkout sends the very
    same parameters, and Stripe's idempotency hands back the same session (different parameters
    under one key would be refused).
    """
    wanted = reservation.expires_at + MIN_SESSION + MARGIN
    latest = reservation.created_at + MAX_SESSION - MARGIN
    if wanted <= latest:
        return wanted
    if latest >= now + MIN_SESSION + MARGIN:
        return latest
    return now + MIN_SESSION + MARGIN  # a hold of nearly a day: no fixed choice fits


def idempotency_key(reservation_id: str) -> str:
    """One Checkout Session per reservation, however often checkout is retried."""
    return f"checkout-session-{reservation_id}"


def session_params(
    reservation: Reservation,
    priced: PricedCart,
    *,
    expires_at: datetime,
    email: str | None,
    public_url: str,
    session_secret: str,
) -> SessionCreateParams:
    """What Stripe is asked for: the priced lines, the sealed metadata, the return URLs."""
    params: SessionCreateParams = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": line.quantity,
                "price_data": {
                    "currency": priced.currency,
                    "unit_amount": line.unit_amount,
                    "product_data": {"name": name, "metadata": {"sku": line.sku}},
                },
            }
            for line, name in priced.lines
        ],
        "client_reference_id": reservation.id,
        "metadata": session_metadata.encode(
            reservation.id,
            [line for line, _ in priced.lines],
            reservation.customer_id,
            session_secret,
        ),
        "payment_intent_data": {"metadata": {"reservation_id": reservation.id}},
        "expires_at": int(expires_at.timestamp()),
        "success_url": f"{public_url}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{public_url}/checkout/cancel?reservation_id={reservation.id}",
    }
    if email is not None:
        params["customer_email"] = email
    return params


def refused(exc: stripe.StripeError) -> errors.PaymentProviderRefused:
    """Stripe's own words about a permanent refusal, for the client (bounded when answered)."""
    error = exc.error
    return errors.PaymentProviderRefused(
        f"Stripe refused the Checkout Session: {type(exc).__name__}",
        stripe_status=exc.http_status,
        stripe_type=getattr(error, "type", None),
        stripe_code=exc.code,
        stripe_message=getattr(error, "message", None) or exc.user_message,
        stripe_param=getattr(error, "param", None),
    )


def session_record(reservation_id: str, session: stripe.checkout.Session) -> Checkout:
    """The record of a session Stripe made, in the status Stripe gave it."""
    return Checkout(
        reservation_id=reservation_id,
        session_id=session.id,
        url=session.url or "",
        expires_at=datetime.fromtimestamp(session.expires_at, UTC),
        status=SESSION_STATUS.get(session.status or "open", CheckoutStatus.OPEN),
    )
