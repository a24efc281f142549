"""A waiting room's three verbs: join (POST /v1/queue/{sku}), poll a ticket (GET
/v1/queue/{sku}/{ticket}) and the room's state for its operators (GET /v1/queue/{sku}, admin).

The buyer who joins is named as for a hold (reservation/customers/caller.py): the verified
customer when customer tokens are configured, else the body's customer_id, else nobody (a new
ticket on every join). The admission a ticket gets is that buyer's: reserve.lua refuses it to
anybody else."""

from __future__ import annotations

from domain.queue import RoomState, TicketState
from reservation.core.inventory import Inventory
from reservation.customers.caller import Caller


async def join(
    inventory: Inventory, caller: Caller, sku: str, customer_id: str | None
) -> TicketState:
    """The buyer's ticket in the SKU's line: new (`created`), or theirs from before."""
    return await inventory.rooms.join(sku, caller.acting_for(customer_id))


async def poll(inventory: Inventory, sku: str, ticket: str) -> TicketState:
    """Where a ticket stands now; the room moves on first (admissions are made lazily)."""
    return await inventory.rooms.poll(sku, ticket)


async def room_state(inventory: Inventory, sku: str) -> RoomState:
    return await inventory.rooms.state(sku)
