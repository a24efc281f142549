"""Whose Checkout Session an event is about: one this service made (its cart checked whole),
or NotOurs, which is acknowledged and left alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain import errors
from persistence.checkouts import CheckoutRepository
from persistence.products import ProductRepository
from reservation.core.reservation_ids import pool_of_reservation
from reservation.payments import session_metadata
from reservation.payments.events import MAX_CONTEXT, check_session_fields
from reservation.payments.session_metadata import SessionCart


class NotOurs(Exception):
    """A Checkout Session this service did not make: acknowledged, nothing done."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def owned_cart(
    session: dict[str, Any],
    *,
    checkouts: CheckoutRepository,
    products: ProductRepository,
    session_secrets: Sequence[str],
) -> SessionCart:
    """The cart of a Checkout Session this service made, checked whole.

    Ours is a session recorded under its reservation, or one whose metadata carries this
    service's seal (reservation/session_metadata.py) and whose reservation has no other
    recorded session: the seal covers a session whose checkout never got recorded (a
    process died between Stripe and MongoDB), the record covers one sealed with a secret
    rotated away (or made before sessions were sealed)."""
    metadata = session.get("metadata")
    if not isinstance(metadata, dict) or not session_metadata.carries_cart(metadata):
        raise NotOurs("its metadata carries no reservation")
    reservation_id = metadata["reservation_id"]
    if not isinstance(reservation_id, str) or len(reservation_id) > MAX_CONTEXT:
        raise NotOurs("its metadata's reservation_id is not one of ours")
    # One read says both: whether this session is the reservation's recorded one, and
    # whether the reservation has another (a session bearing a copy of its metadata).
    made = await checkouts.get_by_reservation(reservation_id)
    if made is not None:
        if made.session_id != session["id"]:
            raise NotOurs("its reservation has another Checkout Session")
    elif not session_metadata.is_sealed(metadata, session_secrets):
        raise NotOurs("neither recorded nor sealed by this service")
    cart = session_metadata.decode(metadata)
    try:
        pool_of_reservation(cart.reservation_id)
    except errors.NotFound:
        raise errors.InvalidPayload("the metadata's reservation_id is not one") from None
    check_session_fields(session)
    if session["amount_total"] != cart.amount_total:
        raise NotOurs("its amount_total is not its cart's price at checkout")
    catalog = await products.get_many(line.sku for line in cart.lines)
    unknown = sorted({line.sku for line in cart.lines} - set(catalog))
    if unknown:
        raise errors.InvalidPayload("the cart names SKUs not in the catalog", skus=unknown)
    return cart
