"""POST /v1/reservations, GET and DELETE /v1/reservations/{id}."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from domain import errors
from domain.outcomes import (
    CustomerRequired,
    Held,
    OutOfStock,
    OverCustomerLimit,
    OverHoldCap,
    Released,
    ReleaseRefused,
    ReserveOutcome,
)
from domain.reservations import CartLine, Reservation
from reservation.api.bodies import json_response, read_json, utc_text
from reservation.api.ratelimits import limit_client, limit_customer
from reservation.api.schemas import CartLineView, ReservationIn, ReservationView
from reservation.api.services import Services, services
from reservation.core.cart import check_customer, encode_cart, normalize_cart
from reservation.core.idempotency import check_key, fingerprint
from reservation.core.inventory import new_reservation_id
from reservation.usecases.release import release

REFUSALS = {
    OutOfStock: "insufficient_stock",
    OverCustomerLimit: "customer_limit_exceeded",
    CustomerRequired: "customer_required",
    OverHoldCap: "hold_cap_reached",
}


def reservation_view(
    reservation: Reservation, checkout_session_id: str | None = None
) -> ReservationView:
    return ReservationView(
        id=reservation.id,
        status=reservation.status,
        items=[CartLineView(line.sku, line.quantity) for line in reservation.items],
        customer_id=reservation.customer_id,
        expires_at=utc_text(reservation.expires_at),
        checkout_session_id=checkout_session_id,
    )


async def _session_of(state: Services, reservation_id: str) -> str | None:
    checkout = await state.checkouts.get_by_reservation(reservation_id)
    return None if checkout is None else checkout.session_id


async def create_reservation(request: Request) -> Response:
    state = services(request)
    body = await read_json(request, ReservationIn)
    lines = normalize_cart([(line.sku, line.quantity) for line in body.items])
    key = request.headers.get("idempotency-key")
    if key is not None:
        key = check_key(key)
    # Sold out a moment ago: refused from this process's memory before the request is counted
    # against the rate limits. Such a refusal holds nothing and asks Stripe nothing; counting
    # it would cost the crowd's refusals the Redis calls the memory is there to save.
    remembered = state.inventory.sold_out.refusal(lines)
    if remembered is not None:
        refusal = await _remembered_refusal(state, remembered, lines, key, body.customer_id)
        if refusal is not None:
            state.metrics.count_reservation(REFUSALS[OutOfStock])
            raise refusal.error()
    try:
        await limit_client(state, request)
        await limit_customer(state, body.customer_id)
    except errors.RateLimited:
        state.metrics.count_reservation("rate_limited")
        raise
    started = time.perf_counter()
    if key is None:
        # The memory was asked above: not again.
        outcome = await state.inventory.reserve(
            lines, customer_id=body.customer_id, consult_memory=False
        )
    else:
        outcome = await _reserve_with_key(state, key, lines, body.customer_id)
    state.metrics.reserve_seconds.observe(time.perf_counter() - started)
    if isinstance(outcome, Held):
        # Units came back for a SKU the memory had as sold out (its re-check held them).
        state.inventory.sold_out.forget(line.sku for line in lines)
        state.metrics.count_reservation("held" if outcome.created else "repeated")
        # A retry with the same Idempotency-Key gets the answer the first request got.
        return json_response(reservation_view(outcome.reservation), 201)
    state.metrics.count_reservation(REFUSALS[type(outcome)])
    raise outcome.error()


async def _remembered_refusal(
    state: Services,
    refusal: OutOfStock,
    lines: tuple[CartLine, ...],
    key: str | None,
    customer_id: str | None,
) -> OutOfStock | None:
    """The sold-out memory's `refusal` of this cart (reservation/soldout.py), when it stands.

    With an Idempotency-Key, only for a key never used (one read, nothing stored: a key is
    kept a day, and a crowd retries with a new key each time); a key already claimed goes on
    and finds its reservation, held or not."""
    # What the reserve itself would answer before the memory: a cart of several pools, or
    # with a SKU unknown (the pools of known SKUs are cached: no Redis call).
    check_customer(customer_id)
    await state.inventory.cart_pool(lines)
    if key is not None and await state.idempotency.known(key, customer_id):
        return None
    return refusal


async def _reserve_with_key(
    state: Services, key: str, lines: tuple[CartLine, ...], customer_id: str | None
) -> ReserveOutcome:
    """Reserve under an Idempotency-Key: the key stands for one reservation id, claimed first."""
    pool = await state.inventory.cart_pool(lines)
    reservation_id = await state.idempotency.claim(
        key,
        fingerprint(encode_cart(lines), customer_id or ""),
        new_reservation_id(pool),
        customer_id=customer_id,
    )
    return await state.inventory.reserve(
        lines, customer_id=customer_id, reservation_id=reservation_id
    )


async def get_reservation(request: Request) -> Response:
    state = services(request)
    reservation = await state.inventory.get(request.path_params["reservation_id"])
    return json_response(reservation_view(reservation, await _session_of(state, reservation.id)))


async def delete_reservation(request: Request) -> Response:
    state = services(request)
    released = await release(
        state.inventory, state.checkouts, state.expiry, request.path_params["reservation_id"]
    )
    outcome = released.outcome
    if isinstance(outcome, ReleaseRefused):
        state.metrics.releases.labels("refused").inc()
        raise outcome.error()
    assert isinstance(outcome, Released)
    state.metrics.releases.labels("released" if outcome.changed else "unchanged").inc()
    return json_response(reservation_view(outcome.reservation, released.checkout_session_id))
