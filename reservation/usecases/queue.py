"""A waiting room's three verbs: join (POST /v1/queue/{sku}), poll a ticket (GET
/v1/queue/{sku}/{ticket}) and the room's state for its operators (GET /v1/queue/{sku}, admin).

The buyer who joins is named as for a hold (reservation/customers/caller.py): the verified
customer when customer tokens are configured, else the body's customer_id, else nobody (a new
ticket on every join). The admission a ticket gets is that buyer's: reserve.lua refuses it to
anybody else."""

from __future__ import annotations

from dataclasses import dataclass

from domain.queue import RoomState, TicketState
from reservation.core.inventory import Inventory
from reservation.core.ratelimit import RateLimiter
from reservation.customers.caller import Caller
from reservation.usecases.limits import limit_client, limit_customer


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A join as asked: the SKU, the body's customer_id (None: none), and the client address
    counted against the limit per address (None: not counted)."""

    sku: str
    customer_id: str | None
    client_address: str | None


async def join(
    inventory: Inventory,
    rate_limiter: RateLimiter,
    caller: Caller,
    request: JoinRequest,
) -> TicketState:
    """The buyer's ticket in the SKU's line: new (`created`), or theirs from before. A join
    counts against the same limits as a hold (client address, then customer): a ticket is
    stored for a day, so an anonymous crowd of joins from one address must be bounded."""
    customer_id = caller.acting_for(request.customer_id)
    if request.client_address is not None:
        await limit_client(rate_limiter, request.client_address)
    await limit_customer(rate_limiter, customer_id)
    return await inventory.rooms.join(request.sku, customer_id)


async def poll(inventory: Inventory, sku: str, ticket: str) -> TicketState:
    """Where a ticket stands now; the room moves on first (admissions are made lazily)."""
    return await inventory.rooms.poll(sku, ticket)


async def room_state(inventory: Inventory, sku: str) -> RoomState:
    return await inventory.rooms.state(sku)
