"""Waiting rooms: a buyer joins a SKU's line and polls a ticket until admitted; an admission
token lets one hold be made (reserve.lua checks and uses it). Each call is one script:
reservation/lua/queue.lua moves the room on (the fair start, the token bucket, admissions) and
answers the ticket; room.lua reads the room for its operators."""

from __future__ import annotations

import re
import secrets

from domain import errors
from domain.queue import RoomState, TicketState
from domain.rules import ADMISSION_TOKEN_REGEX, TICKET_REGEX, check_name
from reservation.core.calls import PoolCalls
from reservation.core.cart import check_customer
from reservation.core.keys import KeySpace, RoomKeys
from reservation.core.pools import PoolDirectory
from reservation.lua.queue import decode as decode_queue
from reservation.lua.room import decode as decode_room

TICKET_PATTERN = re.compile(TICKET_REGEX)
TOKEN_PATTERN = re.compile(ADMISSION_TOKEN_REGEX)
# Random bytes of a ticket and of an admission token's random part: 128 bits, unguessable.
RANDOM_BYTES = 16
# The shuffle's seeds (queue.lua: a combined LCG of these two moduli, minus one each).
SEED_BOUNDS = (2147483562, 2147483398)
# A room's keys live this long after its last join or admission (ms).
ROOM_IDLE_MS = 24 * 3600 * 1000


def new_ticket() -> str:
    return secrets.token_urlsafe(RANDOM_BYTES)


def check_ticket(ticket: object) -> str:
    """A ticket id as the core makes them (InvalidRequest otherwise: nothing is asked)."""
    if not isinstance(ticket, str) or not TICKET_PATTERN.fullmatch(ticket):
        raise errors.InvalidRequest(
            "ticket must be the 22 characters POST /v1/queue/{sku} answered", field="ticket"
        )
    return ticket


def sku_of_token(token: str) -> str | None:
    """The SKU an admission token was made for ("<sku>.<random>"); None for a text that is no
    token of this service (the reserve script then answers admission_invalid)."""
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    return token.rpartition(".")[0]


class Rooms:
    """Join, poll and read the waiting rooms of SKUs (a room is a product's setting: PUT)."""

    def __init__(self, calls: PoolCalls, pools: PoolDirectory, keys: KeySpace) -> None:
        self.calls = calls
        self.pools = pools
        self.keys = keys

    async def join(self, sku: str, customer_id: str | None = None) -> TicketState:
        """A new ticket at the end of the SKU's line; the customer's own ticket if they have
        one (`created` False). Anonymous buyers get a new ticket on every join."""
        customer = check_customer(customer_id) or ""
        return await self._queue(check_name(sku, "sku"), "join", new_ticket(), customer)

    async def poll(self, sku: str, ticket: str) -> TicketState:
        """Where a ticket stands now (TicketNotFound for one the room does not have)."""
        return await self._queue(check_name(sku, "sku"), "poll", check_ticket(ticket), "")

    async def state(self, sku: str) -> RoomState:
        """The SKU's room for its operators: its line, live admissions and their log."""
        sku = check_name(sku, "sku")
        pool = await self.pools.of_sku(sku)
        room_keys = self.room_keys(pool, sku)
        reply = await self.calls.run(pool, "room", [sku], extra_keys=room_keys.all)
        state = decode_room(reply, sku)
        if state == "unknown_sku":
            raise self.pools.no_counters(sku)
        return state

    def room_keys(self, pool: str, sku: str) -> RoomKeys:
        return self.keys.room(pool, sku)

    async def _queue(self, sku: str, mode: str, ticket: str, customer: str) -> TicketState:
        pool = await self.pools.of_sku(sku)
        args = [
            mode,
            sku,
            ticket,
            customer,
            secrets.token_urlsafe(RANDOM_BYTES),
            *(str(1 + secrets.randbelow(bound)) for bound in SEED_BOUNDS),
            str(ROOM_IDLE_MS),
        ]
        reply = await self.calls.run(pool, "queue", args, extra_keys=self.room_keys(pool, sku).all)
        state = decode_queue(reply, sku)
        if state == "unknown_sku":
            raise self.pools.no_counters(sku)
        return state
