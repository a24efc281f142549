"""Waiting rooms (issue 25, section 2), the core on every backend (real Redis, fakeredis, the
cluster): the fair start, the admission rate and max_active, the reserve's admission gate, sold
out. The HTTP API is tests/test_waiting_room_api.py."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from domain.outcomes import AdmissionRefused, Committed, CommittedLate, Held, OutOfStock
from domain.products import WaitingRoom
from domain.reservations import CartLine
from reservation.core.inventory import Inventory
from reservation.lua._pool import encode_room, encode_sale, text
from tests.conftest import age_hold

ENTRY = '{"name":"Tee","price":1500,"currency":"eur"}'
HOUR = timedelta(hours=1)
# One admission at a time, kept an hour: whatever the test's pace, nobody else is admitted.
ONE = WaitingRoom(admit_per_second=1, max_active=1, admission_seconds=3600)
WIDE = WaitingRoom(admit_per_second=100_000, max_active=1000, admission_seconds=3600)


def at(offset: timedelta) -> datetime:
    now = datetime.now(UTC) + offset
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def roomed(
    inventory: Inventory,
    sku: str,
    total: int,
    room: WaitingRoom | None,
    starts: datetime | None = None,
) -> None:
    await inventory.stock.set_stock(
        sku, total, entry=ENTRY, sale=encode_sale(starts, None), room=encode_room(room)
    )


async def admitted(inventory: Inventory, sku: str, customer: str | None) -> str:
    """A token of `customer` for `sku` (its room admits 100,000 a second: WIDE), polled for
    when the join came in the same millisecond as the room's last admission."""
    ticket = await inventory.rooms.join(sku, customer)
    while ticket.status == "waiting":
        ticket = await inventory.rooms.poll(sku, ticket.ticket)
    assert ticket.status == "admitted", ticket
    assert ticket.admission_token is not None
    return ticket.admission_token


async def age_admission(inventory: Inventory, sku: str, token: str) -> None:
    """Make an admission lapse as if its time had passed: its expiry moved to 1 ms."""
    room = inventory.keys.room("default", sku)
    entry = text(await inventory.client.hget(room.admissions, token))
    ticket, admitted_ms, _, rest = entry.split("|", 3)
    await inventory.client.hset(room.admissions, token, f"{ticket}|{admitted_ms}|1|{rest}")
    await inventory.client.zadd(room.live, {token: 1})


# -- the fair start ------------------------------------------------------------------------------


def spearman(first: list[int], second: list[int]) -> float:
    """Spearman's rank correlation of two rankings of the same n items (no ties)."""
    n = len(first)
    squares = sum((a - b) ** 2 for a, b in zip(first, second, strict=True))
    return 1 - 6 * squares / (n * (n * n - 1))


async def test_joins_before_the_start_are_shuffled_once_at_the_start(inventory: Inventory) -> None:
    crowd = 2000
    await roomed(inventory, "tee", 10, ONE, starts=at(HOUR))
    joins = await asyncio.gather(*(inventory.rooms.join("tee", f"buyer-{i}") for i in range(crowd)))
    # Before the start: waiting, in order of arrival, nobody admitted; told to come back at
    # the start (at most a minute from now) and that the wait is the start's, then the line's.
    assert {join.status for join in joins} == {"waiting"}
    assert {join.poll_after_ms for join in joins} == {60000}
    assert min(join.estimated_wait_seconds for join in joins) > 3500
    arrival = {join.ticket: join.position for join in joins}
    assert sorted(arrival.values()) == list(range(1, crowd + 1))

    await roomed(inventory, "tee", 10, ONE, starts=at(-timedelta(seconds=1)))  # the start
    polls = await asyncio.gather(*(inventory.rooms.poll("tee", ticket) for ticket in arrival))
    first = [poll for poll in polls if poll.status == "admitted"]
    waiting = [poll for poll in polls if poll.status == "waiting"]
    assert len(first) == 1  # one admission at a time, an hour long
    assert sorted(poll.position for poll in waiting) == list(range(1, crowd))
    # The line after the start: the admitted ticket, then the others by position.
    place = {poll.ticket: poll.position + 1 for poll in waiting} | {first[0].ticket: 1}
    assert sorted(place.values()) == list(range(1, crowd + 1))
    tickets = list(arrival)
    rho = spearman([arrival[t] for t in tickets], [place[t] for t in tickets])
    assert abs(rho) < 0.1, rho  # the std dev of rho under a random order is ~0.022 here
    # Shuffled once: later polls and joins keep the order, a newcomer goes last.
    again = await asyncio.gather(*(inventory.rooms.poll("tee", t) for t in tickets[:50]))
    assert all(poll.position == place[poll.ticket] - 1 for poll in again if poll.ticket in place)
    late = await inventory.rooms.join("tee", "late")
    assert (late.status, late.position) == ("waiting", crowd)
    state = await inventory.rooms.state("tee")
    assert (state.started, state.waiting, state.active, state.admitted) == (True, crowd, 1, 1)


async def test_after_the_start_the_line_is_in_order_of_arrival(inventory: Inventory) -> None:
    await roomed(inventory, "tee", 10, ONE)
    joins = [await inventory.rooms.join("tee", f"buyer-{i}") for i in range(6)]
    assert [join.status for join in joins] == ["admitted", *["waiting"] * 5]
    assert [join.position for join in joins] == [0, 1, 2, 3, 4, 5]
    # poll_after_ms = clamp(1000 * position / (2 * admit_per_second), 1000, 60000), the wait
    # ceil(position / admit_per_second).
    assert [(join.poll_after_ms, join.estimated_wait_seconds) for join in joins[1:]] == [
        (1000, 1),
        (1000, 2),
        (1500, 3),
        (2000, 4),
        (2500, 5),
    ]


async def test_a_ticket_polls_at_most_half_an_admission_apart(inventory: Inventory) -> None:
    """A waiting ticket is never told to come back later than half its admission's length, so
    one admitted between two of its polls learns of it with at least half the time left."""
    room = WaitingRoom(admit_per_second=1, max_active=1, admission_seconds=10)
    await roomed(inventory, "tee", 10, room, starts=at(HOUR))
    joins = [await inventory.rooms.join("tee", f"buyer-{i}") for i in range(3)]
    assert {join.poll_after_ms for join in joins} == {5000}  # not the hour to the start
    await roomed(inventory, "tee", 10, room, starts=at(-timedelta(seconds=1)))
    polls = [await inventory.rooms.poll("tee", join.ticket) for join in joins]
    waiting = [poll for poll in polls if poll.status == "waiting"]
    assert waiting
    assert all(1000 <= poll.poll_after_ms <= 5000 for poll in waiting)


# -- admission: the rate and max_active ----------------------------------------------------------


async def test_admissions_never_pass_the_rate_nor_max_active(inventory: Inventory) -> None:
    room = WaitingRoom(admit_per_second=20, max_active=1000, admission_seconds=3600)
    await roomed(inventory, "tee", 10**6, room)
    tickets = [(await inventory.rooms.join("tee", f"buyer-{i}")).ticket for i in range(200)]
    wanted = 25

    async def poller(mine: list[str]) -> None:
        for ticket in itertools.cycle(mine):
            if (await inventory.rooms.state("tee")).admitted >= wanted:
                return
            await inventory.rooms.poll("tee", ticket)

    await asyncio.gather(*(poller(tickets[i::40]) for i in range(40)))
    log = sorted(
        admission.admitted_at for admission in (await inventory.rooms.state("tee")).admissions
    )
    assert len(log) >= wanted
    # Any window [log[i], log[j]] (by Redis's clock) holds at most rate * window + 1 of them.
    for i, j in itertools.combinations(range(len(log)), 2):
        window = (log[j] - log[i]).total_seconds()
        assert j - i + 1 <= room.admit_per_second * window + 1, (i, j, window)


async def test_never_more_than_max_active_live_admissions(inventory: Inventory) -> None:
    room = WaitingRoom(admit_per_second=100_000, max_active=3, admission_seconds=3600)
    await roomed(inventory, "tee", 100, room)
    joins = [await inventory.rooms.join("tee", f"buyer-{i}") for i in range(10)]

    async def admit_until(admitted: int) -> None:
        # The bucket holds one admission and refills within a millisecond: polled until then.
        for _ in range(10_000):
            if (await inventory.rooms.state("tee")).admitted >= admitted:
                return
            await asyncio.gather(*(inventory.rooms.poll("tee", j.ticket) for j in joins))
        pytest.fail(f"fewer than {admitted} admitted")

    await admit_until(3)
    polls = await asyncio.gather(*(inventory.rooms.poll("tee", j.ticket) for j in joins * 5))
    assert {poll.ticket for poll in polls if poll.status == "admitted"} == {
        join.ticket for join in joins[:3]
    }
    state = await inventory.rooms.state("tee")
    assert (state.active, state.admitted, state.waiting) == (3, 3, 7)
    # A token used for a hold frees its place; one that lapses too.
    first, second = polls[0], polls[1]
    assert first.admission_token is not None
    assert second.admission_token is not None
    held = await inventory.holds.reserve(
        [("tee", 1)], customer_id="buyer-0", admission_token=first.admission_token
    )
    assert isinstance(held, Held)
    await age_admission(inventory, "tee", second.admission_token)
    await admit_until(5)
    await asyncio.gather(*(inventory.rooms.poll("tee", j.ticket) for j in joins * 3))
    state = await inventory.rooms.state("tee")
    assert (state.active, state.admitted, state.used, state.waiting) == (3, 5, 1, 5)
    assert (await inventory.rooms.poll("tee", second.ticket)).status == "expired"
    assert (await inventory.rooms.poll("tee", first.ticket)).status == "admitted"
    # A lapsed turn's buyer joins again at the end of the line; a used one keeps their ticket.
    again = await inventory.rooms.join("tee", "buyer-1")
    assert again.created
    assert again.ticket != second.ticket
    assert (again.status, again.position) == ("waiting", 6)
    assert (await inventory.rooms.poll("tee", second.ticket)).status == "expired"
    assert (await inventory.rooms.join("tee", "buyer-0")).ticket == first.ticket
    assert (await inventory.rooms.join("tee", "buyer-1")).ticket == again.ticket


# -- the reserve's gate --------------------------------------------------------------------------


async def test_every_refusal_of_the_gate_leaves_stock_and_token_as_they_were(
    inventory: Inventory,
) -> None:
    await roomed(inventory, "tee", 5, WIDE)
    await roomed(inventory, "cap", 5, WIDE)
    await roomed(inventory, "mug", 5, None)
    ann = await admitted(inventory, "tee", "ann")
    cap = await admitted(inventory, "cap", "ann")

    async def refused(reason: str, token: str | None, customer: str | None, *cart: str) -> None:
        lines = [(sku, 1) for sku in cart or ("tee",)]
        outcome = await inventory.holds.reserve(lines, customer_id=customer, admission_token=token)
        assert isinstance(outcome, AdmissionRefused), outcome
        assert outcome.reason == reason
        assert outcome.error().code == f"admission_{reason}"

    await refused("required", None, "ann")
    await refused("invalid", "tee.AAAAAAAAAAAAAAAAAAAAAA", "ann")  # unknown
    await refused("invalid", "nonsense", "ann")
    await refused("invalid", ann, "bob")  # another buyer's
    await refused("invalid", ann, None)
    await refused("invalid", cap, "ann", "tee")  # another SKU's
    await refused("required", ann, "ann", "tee", "cap")  # one token, two rooms
    await refused("required", None, "ann", "mug", "tee")  # a room in the cart
    # A SKU without a room needs nothing, and ignores a token.
    assert isinstance(await inventory.holds.reserve([("mug", 1)], admission_token=ann), Held)
    # The sold-out memory never remembers a room's refusal.
    assert inventory.sold_out.refusal([CartLine("tee", 1)]) is None
    assert (await inventory.stock.level("tee")).reserved == 0
    # A stock refusal does not consume the token; then it holds once.
    short = await inventory.holds.reserve([("tee", 6)], customer_id="ann", admission_token=ann)
    assert isinstance(short, OutOfStock)
    held = await inventory.holds.reserve([("tee", 2)], customer_id="ann", admission_token=ann)
    assert isinstance(held, Held)
    await refused("used", ann, "ann")
    # A retry of the same reservation id answers the hold, not admission_used.
    retry = await inventory.holds.reserve(
        [("tee", 2)],
        customer_id="ann",
        admission_token=ann,
        reservation_id=held.reservation.id,
    )
    assert retry == Held(held.reservation, created=False)
    # Expired.
    bob = await admitted(inventory, "tee", "bob")
    await age_admission(inventory, "tee", bob)
    await refused("invalid", bob, "bob")
    # The paid path is the hold's own: the room is not asked again.
    assert isinstance(await inventory.holds.commit(held.reservation.id), Committed)
    state = await inventory.rooms.state("tee")
    assert [(a.used_at is not None, a.reservation_id) for a in state.admissions] == [
        (True, held.reservation.id),
        (False, None),
    ]


async def test_a_hold_made_with_an_admission_is_paid_late_like_any_other(
    inventory: Inventory,
) -> None:
    await roomed(inventory, "tee", 5, WIDE)
    token = await admitted(inventory, "tee", "ann")
    held = await inventory.holds.reserve([("tee", 1)], customer_id="ann", admission_token=token)
    assert isinstance(held, Held)
    await age_hold(inventory.client, inventory.keys, held.reservation.id)
    await roomed(inventory, "tee", 5, ONE)  # the room changed meanwhile: commit never asks it
    late = await inventory.holds.commit(held.reservation.id, items=[("tee", 1)])
    assert isinstance(late, CommittedLate)
    assert (await inventory.stock.level("tee")).sold == 1


async def test_one_token_across_fifty_concurrent_reserves_makes_one_hold(
    inventory: Inventory,
) -> None:
    await roomed(inventory, "tee", 1000, WIDE)
    token = await admitted(inventory, "tee", "ann")
    outcomes = await asyncio.gather(
        *(
            inventory.holds.reserve([("tee", 1)], customer_id="ann", admission_token=token)
            for _ in range(50)
        )
    )
    assert sum(isinstance(outcome, Held) for outcome in outcomes) == 1
    assert outcomes.count(AdmissionRefused("tee", "used")) == 49
    assert (await inventory.stock.level("tee")).reserved == 1


async def test_anonymous_and_rejoining_buyers(inventory: Inventory) -> None:
    await roomed(inventory, "tee", 5, ONE)
    ann = await inventory.rooms.join("tee", "ann")
    again = await inventory.rooms.join("tee", "ann")
    assert again == replace(ann, created=False)
    assert ann.created
    anonymous = [await inventory.rooms.join("tee") for _ in range(2)]
    assert anonymous[0].ticket != anonymous[1].ticket
    assert [one.position for one in anonymous] == [1, 2]
    assert ann.admission_token is not None
    # An anonymous admission is anybody's who sends no customer id; ann's is hers.
    assert isinstance(
        await inventory.holds.reserve([("tee", 1)], admission_token=ann.admission_token),
        AdmissionRefused,
    )


async def test_waiting_tickets_answer_sold_out_and_wait_again_when_units_come_back(
    inventory: Inventory,
) -> None:
    await roomed(inventory, "tee", 1, ONE)
    ann = await admitted(inventory, "tee", "ann")
    bob = await inventory.rooms.join("tee", "bob")
    assert bob.status == "waiting"
    held = await inventory.holds.reserve([("tee", 1)], customer_id="ann", admission_token=ann)
    assert isinstance(held, Held)
    gone = await inventory.rooms.poll("tee", bob.ticket)
    assert (gone.status, gone.position) == ("sold_out", 1)
    await inventory.holds.release(held.reservation.id)
    back = await inventory.rooms.poll("tee", bob.ticket)
    assert back.status in ("waiting", "admitted")


async def test_a_room_keeps_its_keys_a_day_after_its_last_write(inventory: Inventory) -> None:
    await roomed(inventory, "tee", 5, ONE)
    await inventory.rooms.join("tee", "ann")
    await inventory.rooms.join("tee", "bob")
    for key in inventory.keys.room("default", "tee").all:
        ttl = await inventory.client.pttl(key)
        assert 23 * 3600 * 1000 < ttl <= 24 * 3600 * 1000, (key, ttl)
