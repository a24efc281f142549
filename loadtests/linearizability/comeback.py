"""The late buyer: a client of its own pool acts out, again and again, the moment the sold-out
memory exists for and could get wrong. It holds every unit of its SKU, a crowd is refused
("0 left", remembered by whichever workers answered), the hold is given back, and after the
crowd has gone - longer than the memory may last and than the checker's window - late buyers
ask for the units, a unit each. Every call is on a new connection, so the kernel picks the
worker each time (calls in flight together tend to meet the same one: they are asked one by
one).

The designed memory has lapsed by then: every late buyer is sold a unit. A memory that outlives
its window refuses the late buyers a worker that did not take the release answers, while the
units are free the whole time: an under-sell the checker cannot explain. In the crowd's pools
that moment is rare (a release is soon taken again, or made on the remembering worker, which
forgets); here it comes about every other cycle (how often depends on which worker answers
what, which the client cannot choose), a cycle lasting about half a second, and a run has a
few late buyers at once, each in a pool of its own (the crowd never asks for its SKU): one
client each, its calls one at a time, they cost the checker next to nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtests.linearizability.answers import (
    Answer,
    call,
    read_product_result,
    release_result,
    reserve_result,
)
from loadtests.linearizability.recording import Recording
from loadtests.linearizability.staleness import soldout_window

# Refusals while every unit is held: that a worker other than the release's is not among
# those that answered them is unlikely, even with the kernel's choice of worker uneven.
CROWD = 8


@dataclass
class LateBuyer:
    """A comeback pool's one client: its process number in the history, its connections
    (none kept alive), the holds it has and has not given back yet."""

    process: int
    pool: str
    sku: str
    recording: Recording
    http: httpx.AsyncClient
    held: list[str] = field(default_factory=list)

    @property
    def quiet(self) -> float:
        """How long the crowd stays away: past the checker's window for the service's memory
        (staleness.py), by a margin."""
        return soldout_window(self.recording.catalog.soldout_window) + 0.05

    async def run(self, going: Callable[[], bool]) -> None:
        while going():
            await self.cycle()
            await self.give_back()
            # The next cycle's read then sees the units given back (the read cache's period).
            await asyncio.sleep(self.recording.catalog.read_window + 0.05)

    async def cycle(self) -> None:
        """Sell out, refuse a crowd, give back, wait, sell to late buyers."""
        # No more than its stock, whatever the read says (a service that gives units back
        # twice would have the late buyers ask for ever more).
        total = self.recording.catalog.pools[self.pool][self.sku].total
        available = min(await self.read(), total)
        if available <= 0:
            return
        hold = await self.reserve(available)
        if hold is None:
            return
        # Refused: every unit is held (a hold made anyway is given back after the cycle).
        for _ in range(CROWD):
            await self.reserve(1)
        await self.release(hold)
        await asyncio.sleep(self.quiet)
        for _ in range(available):  # the late buyers, a unit each
            if await self.reserve(1) is None:
                return  # refused (or unknown): what the checker is to judge

    async def read(self) -> int:
        answer = await self.recording.record(
            self.process,
            self.pool,
            "read_product",
            {"sku": self.sku},
            call(self.http, "GET", f"/v1/products/{self.sku}"),
            read_product_result,
        )
        available = answer.body.get("available") if answer.status == 200 else None
        return available if isinstance(available, int) else 0

    async def reserve(self, quantity: int) -> str | None:
        """An anonymous hold of `quantity` units (no per-customer limit or hold cap applies):
        its id, kept to be given back; None when none was made."""
        items: list[list[Any]] = [[self.sku, quantity]]
        body = {"items": [{"sku": self.sku, "quantity": quantity}]}
        answer = await self.recording.record(
            self.process,
            self.pool,
            "reserve",
            {"items": items, "customer_id": None, "key": None},
            call(self.http, "POST", "/v1/reservations", json=body),
            reserve_result,
        )
        if answer.status != 201 or answer.body.get("status") != "held":
            return None
        # Not among the recording's known reservations: the crowd reads those, and its reads
        # would make this pool's calls concurrent.
        reservation = str(answer.body["id"])
        self.held.append(reservation)
        return reservation

    async def release(self, reservation: str) -> Answer:
        answer = await self.recording.record(
            self.process,
            self.pool,
            "release",
            {"id": reservation},
            call(self.http, "DELETE", f"/v1/reservations/{reservation}"),
            release_result,
        )
        if answer.status in (200, 404, 409):
            self.held.remove(reservation)
        return answer

    async def give_back(self) -> None:
        """Every hold still kept, released (one that fails stays for the next cycle)."""
        for reservation in list(self.held):
            await self.release(reservation)
