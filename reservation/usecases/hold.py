"""Holding a cart: the one way both POST /v1/reservations and POST /v1/checkout (with `items`)
set units aside.

One order for both: whose cart it is (the verified customer, when customer tokens are
configured: reservation/customers/caller.py), the sold-out memory, the rate limits, the
Idempotency-Key's claim, the reserve script, the metrics. A refusal from the memory comes
first (after the customer, which costs no Redis call) because it holds nothing, asks Redis
nothing and Stripe nothing: counting it against the rate limits would cost the crowd's
refusals the Redis calls the memory is there to save.

What differs by route, and why:

- POST /v1/checkout counts its client address before its body is read (a client past its limit
  is refused without buffering a body), so it comes here with the address counted already
  (`client_address=None`): a refusal from the memory has counted for its address, not for its
  customer. POST /v1/reservations reads its body first and hands its address on.
- A reserve request is counted here (reservation_reservations_total{outcome},
  reservation_reserve_seconds, the holds per second of /ops). A checkout's cart is counted as
  the checkout it belongs to (reservation_checkouts_total, its hold once its session is made:
  usecases/checkout.py), so `for_checkout` counts nothing here.
- Only POST /v1/reservations takes an Idempotency-Key: a checkout is made once per reservation
  by Stripe's own idempotency key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from domain import errors
from domain.outcomes import (
    AdmissionRefused,
    CustomerRequired,
    Held,
    NotOnSale,
    OutOfStock,
    OverCustomerLimit,
    OverHoldCap,
)
from domain.reservations import CartLine
from reservation.core.cart import CartInput, check_customer, normalize_cart
from reservation.core.idempotency import IdempotencyKeys, check_key, fingerprint
from reservation.core.inventory import Inventory
from reservation.core.ratelimit import RateLimiter
from reservation.core.reservation_ids import new_reservation_id
from reservation.customers.caller import ANYONE, Caller
from reservation.lua._pool import encode_cart
from reservation.metrics import Metrics
from reservation.usecases.limits import limit_client, limit_customer

# The outcome label of each refusal (reservation_reservations_total{outcome}); a waiting room's
# (AdmissionRefused) is its error's code: admission_required, _invalid or _used.
REFUSALS = {
    OutOfStock: "insufficient_stock",
    OverCustomerLimit: "customer_limit_exceeded",
    CustomerRequired: "customer_required",
    OverHoldCap: "hold_cap_reached",
    NotOnSale: "not_on_sale",
}


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """A cart to hold, as the client sent it.

    `customer_id`: the body's; `caller`: who sent it (reservation/customers/caller.py), whose
    verified customer the cart is held for when customer ids are verified. `client_address`:
    what the limit per client address counts; None when the caller counted it already (POST
    /v1/checkout, before its body was read). `for_checkout`: the first step of a checkout,
    whose request is counted as a checkout, not here. `admission_token`: what a SKU with a
    waiting room needs to be held (core/rooms.py)."""

    items: CartInput
    customer_id: str | None = None
    caller: Caller = ANYONE
    idempotency_key: str | None = None
    client_address: str | None = None
    for_checkout: bool = False
    admission_token: str | None = None


class Hold:
    """Hold a cart whole, or refuse it with the ReservationError of its refusal."""

    def __init__(
        self,
        *,
        inventory: Inventory,
        idempotency: IdempotencyKeys,
        rate_limiter: RateLimiter,
        metrics: Metrics,
    ) -> None:
        self.inventory = inventory
        self.idempotency = idempotency
        self.rate_limiter = rate_limiter
        self.metrics = metrics

    async def __call__(self, request: HoldRequest) -> Held:
        """The cart held (or, under a claimed Idempotency-Key, the reservation it stands for)."""
        # Whose cart, first: a body naming a customer its token does not is refused before
        # anything is counted for anybody (the limits, the cap and the key's scope are its).
        customer_id = request.caller.acting_for(request.customer_id)
        lines = normalize_cart(request.items)
        key = None if request.idempotency_key is None else check_key(request.idempotency_key)
        remembered = self.inventory.sold_out.refusal(lines)
        if remembered is not None and await self._refusal_stands(lines, key, customer_id):
            self._count(request, REFUSALS[OutOfStock])
            raise remembered.error()
        try:
            if request.client_address is not None:
                await limit_client(self.rate_limiter, request.client_address)
            await limit_customer(self.rate_limiter, customer_id)
        except errors.RateLimited:
            self._count(request, "rate_limited")
            raise
        started = time.perf_counter()
        reservation_id = None if key is None else await self._claim(key, lines, customer_id)
        outcome = await self.inventory.holds.reserve(
            lines,
            customer_id=customer_id,
            reservation_id=reservation_id,
            admission_token=request.admission_token,
        )
        if not request.for_checkout:
            self.metrics.reserve_seconds.observe(time.perf_counter() - started)
        if isinstance(outcome, Held):
            # Units came back for a SKU the memory had as sold out (its re-check held them).
            self.inventory.sold_out.forget(line.sku for line in lines)
            self._count(request, "held" if outcome.created else "repeated")
            return outcome
        if isinstance(outcome, AdmissionRefused):
            error = outcome.error()
            self._count(request, error.code)
            raise error
        self._count(request, REFUSALS[type(outcome)])
        raise outcome.error()

    def _count(self, request: HoldRequest, outcome: str) -> None:
        if not request.for_checkout:
            self.metrics.count_reservation(outcome)

    async def _refusal_stands(
        self, lines: tuple[CartLine, ...], key: str | None, customer_id: str | None
    ) -> bool:
        """Whether the sold-out memory's refusal of this cart (core/soldout.py) is the answer.

        With an Idempotency-Key, only for a key never used (one read, nothing stored: a key is
        kept a day, and a crowd retries with a new key each time); a key already claimed goes
        on and finds its reservation, held or not."""
        # What the reserve itself would answer first: a customer id that is none, a cart of
        # several pools, or with a SKU unknown (the pools of known SKUs are cached: no Redis
        # call).
        check_customer(customer_id)
        await self.inventory.pools.of_cart(lines)
        return key is None or not await self.idempotency.known(key, customer_id)

    async def _claim(self, key: str, lines: tuple[CartLine, ...], customer_id: str | None) -> str:
        """The reservation id an Idempotency-Key stands for: a new one, claimed first."""
        pool = await self.inventory.pools.of_cart(lines)
        return await self.idempotency.claim(
            key,
            fingerprint(encode_cart(lines), customer_id or ""),
            new_reservation_id(pool),
            customer_id=customer_id,
        )
