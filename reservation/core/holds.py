"""Holds and their lifecycle: reserve, release, commit, extend, restock, read, reclaim; each
change is one atomic script call, its reply decoded beside the script (reservation/lua/)."""

from __future__ import annotations

from domain import errors
from domain.outcomes import (
    CommitOutcome,
    ExtendOutcome,
    Held,
    OutOfStock,
    Released,
    ReleaseOutcome,
    ReserveOutcome,
    SettleOutcome,
)
from domain.reservations import Reservation
from domain.rules import check_name
from reservation.core.calls import PoolCalls
from reservation.core.cart import CartInput, check_customer, normalize_cart
from reservation.core.keys import KeySpace
from reservation.core.pools import PoolDirectory
from reservation.core.reservation_ids import new_reservation_id, pool_of_reservation
from reservation.core.rooms import sku_of_token
from reservation.core.soldout import SoldOutMemory
from reservation.lua._pool import NoCounters, encode_cart
from reservation.lua.commit import decode as decode_commit
from reservation.lua.extend import decode as decode_extend
from reservation.lua.lookup import decode as decode_lookup
from reservation.lua.reclaim import decode as decode_reclaim
from reservation.lua.release import decode as decode_release
from reservation.lua.reserve import decode as decode_reserve
from reservation.lua.restock import decode as decode_restock
from reservation.lua.settle_paid import decode as decode_settle_paid


class Holds:
    """Carts held, released, paid for (or refused as oversold) and refunded, in Redis."""

    def __init__(
        self,
        calls: PoolCalls,
        pools: PoolDirectory,
        sold_out: SoldOutMemory,
        keys: KeySpace,
        *,
        hold_seconds: float = 600,
        retention_seconds: float = 3 * 24 * 3600,
        require_customer: bool = False,
        max_holds_per_customer: int = 0,
    ) -> None:
        self.calls = calls
        self.pools = pools
        self.sold_out = sold_out
        self.keys = keys
        self.hold_ms = int(hold_seconds * 1000)
        self.retention_ms = int(retention_seconds * 1000)
        # Refuse carts without a customer id that hold a SKU with a per-customer limit.
        self.require_customer = require_customer
        # The most live holds (held, not paid) one customer id may have in a pool; 0: no cap.
        self.max_holds_per_customer = max_holds_per_customer
        # The reserve script's arguments that are the same on every call, encoded once.
        self._hold_arg = str(self.hold_ms).encode()
        self._retention_arg = str(self.retention_ms).encode()
        self._reserve_tail = b"1" if require_customer else b"0"
        self._cap_arg = str(max_holds_per_customer).encode()

    async def reserve(
        self,
        items: CartInput,
        *,
        customer_id: str | None = None,
        reservation_id: str | None = None,
        hold_seconds: float | None = None,
        admission_token: str | None = None,
    ) -> ReserveOutcome:
        """Hold every line of the cart, or none. Idempotent by reservation id.

        `admission_token`: what a SKU with a waiting room needs (core/rooms.py); one the hold
        uses is used up, one a refusal meets is left as it was.

        Redis decides; the sold-out memory is the hold use case's to consult before this.
        A refusal for want of stock is remembered there, and units given back forget it."""
        lines = normalize_cart(items)
        customer = check_customer(customer_id)
        hold_ms = self.hold_ms if hold_seconds is None else int(hold_seconds * 1000)
        if hold_ms < 1:
            raise errors.InvalidRequest("hold_seconds must be positive", field="hold_seconds")
        pool = await self.pools.of_cart(lines)
        fresh = reservation_id is None
        if reservation_id is None:
            reservation_id = new_reservation_id(pool)
        elif pool_of_reservation(reservation_id) != pool:
            raise errors.MixedPools("the reservation id names another pool than the cart")
        args: list[str | int | bytes] = [
            reservation_id,
            self._hold_arg if hold_seconds is None else hold_ms,
            self._retention_arg,
            customer or "",
            encode_cart(lines),
            b"1" if fresh else b"0",
            self._reserve_tail,
            self._cap_arg,
            admission_token or "",
        ]
        # The token's room keys (of the SKU it names, in this cart's pool); none for a text
        # that is no token: the script answers admission_invalid if a room needs one.
        token_sku = None if admission_token is None else sku_of_token(admission_token)
        room: tuple[str, ...] = ()
        if token_sku is not None:
            room_keys = self.keys.room(pool, token_sku)
            room = (room_keys.admissions, room_keys.live)
        reply = await self.calls.run(pool, "reserve", args, reservation_id, extra_keys=room)
        outcome = decode_reserve(reply, reservation_id, pool, lines, customer)
        if isinstance(outcome, Held):
            return outcome
        if isinstance(outcome, OutOfStock):
            self.sold_out.remember(outcome)
        elif isinstance(outcome, NoCounters):
            raise self.pools.no_counters(outcome.sku)
        return outcome

    async def release(self, reservation_id: str) -> ReleaseOutcome:
        """Give a live hold back. Idempotent; refused once the reservation is committed."""
        reply, pool = await self.calls.run_for(reservation_id, "release", [])
        outcome = decode_release(reply, reservation_id, pool)
        if isinstance(outcome, Released) and outcome.changed:
            self.sold_out.forget(line.sku for line in outcome.reservation.items)
        return outcome

    async def commit(
        self,
        reservation_id: str,
        *,
        items: CartInput | None = None,
        customer_id: str | None = None,
    ) -> CommitOutcome:
        """Payment confirmed: sell the held units, or take the late-payment path.

        `items` is the paid cart (from the Checkout Session's metadata), used only when Redis
        no longer has the reservation at all.
        """
        fallback = "" if items is None else encode_cart(normalize_cart(items))
        customer = check_customer(customer_id) or ""
        args: list[str | int] = [self.retention_ms, fallback, customer]
        reply, pool = await self.calls.run_for(reservation_id, "commit", args)
        outcome = decode_commit(reply, reservation_id, pool)
        if isinstance(outcome, NoCounters):
            raise self.pools.lost(outcome.sku)
        return outcome

    async def extend(self, reservation_id: str, *, hold_seconds: float) -> ExtendOutcome:
        """Held -> awaiting_payment, the hold lasting at least `hold_seconds` from now."""
        if not hold_seconds > 0:
            raise errors.InvalidRequest("hold_seconds must be positive", field="hold_seconds")
        args = [int(hold_seconds * 1000), self.retention_ms]
        reply, pool = await self.calls.run_for(reservation_id, "extend", args)
        return decode_extend(reply, reservation_id, pool)

    async def restock(self, reservation_id: str) -> Reservation:
        """A refunded, committed reservation's units go back on sale (once)."""
        reply, pool = await self.calls.run_for(reservation_id, "restock", [self.retention_ms])
        reservation = decode_restock(reply, reservation_id, pool)
        self.sold_out.forget(line.sku for line in reservation.items)
        return reservation

    async def get(self, reservation_id: str) -> Reservation:
        """The reservation as it stands now; a lapsed hold reads as expired."""
        reply, pool = await self.calls.run_for(reservation_id, "lookup", [])
        return decode_lookup(reply, reservation_id, pool)

    async def reclaim(self, pool: str, *, batches: int = 1000) -> int:
        """Give back every lapsed hold of a pool (the sweeper's pass); returns how many."""
        check_name(pool, "pool")
        reclaimed = 0
        for _ in range(batches):
            batch = decode_reclaim(await self.calls.run(pool, "reclaim", []))
            reclaimed += batch.reclaimed
            if batch.waiting == 0:
                break
        return reclaimed

    async def settle_paid(
        self, reservation_id: str, *, items: CartInput, customer_id: str | None = None
    ) -> SettleOutcome:
        """Reconcile: MongoDB has a paid order for this reservation; make its record committed
        (counters untouched: `Stock.restore` sets them next). "settled" if the record changed,
        "unchanged" if it was committed already, "oversold" if its payment was refused for good
        (the order sells nothing: its refund is on the way), "unknown" for an id not ours."""
        cart = encode_cart(normalize_cart(items))
        args: list[str | int] = [self.retention_ms, cart, customer_id or ""]
        try:
            reply, _ = await self.calls.run_for(reservation_id, "settle_paid", args)
        except errors.NotFound:
            return "unknown"  # not a reservation id of this service
        return decode_settle_paid(reply)
