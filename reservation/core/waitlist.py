"""Waiting lists: a buyer joins a sold-out SKU's line, and units that come back are offered to
its head by the very script that gives them back (hand_off in reservation/lua/_pool.lua: a
release, a lapse, a restock, more stock). Each call here is one script: waitlist.lua (join,
read, leave, an operator's remove, close and open) and waitlist_line.lua (the line for its
operators)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from domain import errors
from domain.rules import check_name
from domain.waitlist import LineState, Waiter, WaiterState
from reservation.core.calls import PoolCalls
from reservation.core.cart import check_customer, check_quantity
from reservation.core.pools import PoolDirectory
from reservation.lua.waitlist import decode as decode_waitlist
from reservation.lua.waitlist_line import decode as decode_line

# An offer's reservation id is "<pool>.wl-<22 characters>": chosen at the join (a script has no
# randomness of its own), 128 bits, and told apart from an ordinary id (16 characters) by the
# scripts without a lookup.
OFFER_RANDOM_BYTES = 16
OFFER_TOKEN_LENGTH = 25  # "wl-" and 22 characters of URL-safe base64
# How many entries of a line its operators see, from the head.
LINE_SHOWN = 100


def new_offer_id(pool: str) -> str:
    return f"{pool}.wl-{secrets.token_urlsafe(OFFER_RANDOM_BYTES)}"


def is_offer_id(reservation_id: str) -> bool:
    """Whether a reservation id is a waiting list's offer's (as _pool.lua's is_offer_id)."""
    token = reservation_id.rpartition(".")[2]
    return token.startswith("wl-") and len(token) == OFFER_TOKEN_LENGTH


class Waitlists:
    """Join, read and leave the waiting lists of SKUs, and run them for their operators."""

    def __init__(
        self,
        calls: PoolCalls,
        pools: PoolDirectory,
        *,
        offer_seconds: float = 600,
        retention_seconds: float = 3 * 24 * 3600,
    ) -> None:
        if offer_seconds <= 0 or retention_seconds < 0:
            raise ValueError("offer_seconds > 0, retention_seconds >= 0")
        self.calls = calls
        self.pools = pools
        self._offer_ms = str(int(offer_seconds * 1000))
        self._retention_ms = str(int(retention_seconds * 1000))

    async def join(self, sku: str, customer_id: str | None, quantity: int) -> WaiterState:
        """A new entry at the end of the SKU's line (`created`), or the customer's own while
        waiting or offered. Refused: an anonymous buyer (CustomerRequired), a SKU with units
        the public may hold (OnSale), a closed list, the per-customer limit."""
        sku = check_name(sku, "sku")
        customer = self._customer(customer_id)
        quantity = check_quantity(quantity)
        pool = await self.pools.of_sku(sku)
        args = ["join", sku, customer, str(quantity), self._offer_ms, self._retention_ms]
        return await self._entry(pool, sku, customer, [*args, new_offer_id(pool)])

    async def read(self, sku: str, customer_id: str | None) -> WaiterState:
        """The customer's entry (NotInLine for none)."""
        sku, customer = check_name(sku, "sku"), self._customer(customer_id)
        pool = await self.pools.of_sku(sku)
        return await self._entry(pool, sku, customer, ["read", sku, customer])

    async def leave(self, sku: str, customer_id: str | None) -> WaiterState:
        """The customer leaves the line (an operator's remove is the same); an entry no longer
        waiting is answered as it is. The units kept for a head that leaves go to the next."""
        sku, customer = check_name(sku, "sku"), self._customer(customer_id)
        pool = await self.pools.of_sku(sku)
        return await self._entry(pool, sku, customer, ["leave", sku, customer])

    async def close(self, sku: str) -> int:
        """Nobody joins the SKU's list until it is opened; everyone waiting leaves it (their
        entries read "left"); live offers stand. How many left."""
        return await self._list_change(check_name(sku, "sku"), "close")

    async def open(self, sku: str) -> None:
        await self._list_change(check_name(sku, "sku"), "open")

    async def line(self, sku: str, shown: int = LINE_SHOWN) -> LineState:
        """The SKU's list for its operators: closed or not, its length, live offers, and the
        first `shown` entries of its line."""
        sku = check_name(sku, "sku")
        pool = await self.pools.of_sku(sku)
        state = decode_line(await self.calls.run(pool, "waitlist_line", [sku, str(shown)]), sku)
        if state == "unknown_sku":
            raise self.pools.no_counters(sku)
        return state

    def restore_args(self, pool: str, line: Sequence[Waiter]) -> list[str]:
        """The tail of restore.lua's arguments: the offers' settings, then `line` (in join
        order) to put back where Redis lost it (Stock.restore)."""
        joins = [
            f"{waiter.quantity}|{int(waiter.joined_at.timestamp() * 1000)}|"
            f"{new_offer_id(pool)}|{check_customer(waiter.customer_id)}"
            for waiter in line
        ]
        return [self._offer_ms, self._retention_ms, *joins]

    async def _entry(self, pool: str, sku: str, customer: str, args: list[str]) -> WaiterState:
        state = decode_waitlist(await self.calls.run(pool, "waitlist", args), sku, customer)
        if state == "unknown_sku":
            raise self.pools.no_counters(sku)
        if not isinstance(state, WaiterState):
            raise ValueError(f"waitlist.lua answered {state!r} to {args[0]}")
        return state

    async def _list_change(self, sku: str, mode: str) -> int:
        pool = await self.pools.of_sku(sku)
        state = decode_waitlist(await self.calls.run(pool, "waitlist", [mode, sku]), sku, "")
        if state == "unknown_sku":
            raise self.pools.no_counters(sku)
        if not isinstance(state, int):
            raise ValueError(f"waitlist.lua answered {state!r} to {mode}")
        return state

    @staticmethod
    def _customer(customer_id: str | None) -> str:
        customer = check_customer(customer_id)
        if customer is None:
            raise errors.CustomerRequired(
                "a waiting list holds units for a known buyer: send customer_id (or a customer"
                " token)",
                field="customer_id",
            )
        return customer
