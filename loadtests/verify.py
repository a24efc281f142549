"""The invariant verifier: after a sale, is anything oversold, lost, doubled or left open?

    python -m loadtests.verify [--redis-url URL] [--mongodb-uri URI] [--mongodb-database NAME]
                               [--key-prefix PREFIX] [--stripe-api-base URL] [--restock-on-refund]
                               [--merchant-refunds] [--locust-stats CSV] [--waiting-room]
                               [--waitlist --shop-events FILE]

Reads Redis, MongoDB and Stripe (the simulator, or Stripe's test mode) as the service sees them:
every option defaults to the service's own environment variable (REDIS_URL, MONGODB_URI,
MONGODB_DATABASE, RESERVATION_KEY_PREFIX, STRIPE_API_BASE, STRIPE_SECRET_KEY,
RESERVATION_RESTOCK_ON_REFUND). It changes nothing, prints one line per broken invariant
(per SKU where there is one) and exits 1 if there is any, 0 otherwise. Run it after the
webhooks have drained and a final sweep (`reservation sweep`).

The invariants:
- counters: per SKU, reserved + sold <= total, none negative;
- sold: per SKU, `sold` equals the units of the orders that count as sold (paid, and refunded
  unless refunds restock);
- held: every order's reservation was made by this service (its checkout was recorded, or Redis
  still has the reservation);
- paid: every session Stripe reports paid has exactly one order, and every `paid` order's
  session is paid at Stripe;
- refunds: every refund is one this service made for an oversold late payment (its order is
  `refunded_oversold`), and a session has at most one refund; with `--merchant-refunds` (a
  sale whose merchant refunds, as from the Dashboard) refunds not made by this service are
  allowed, and each must show on its order: a payment refunded in full is a `refunded` order,
  one refunded in part is still `paid` (either may be `refunded_oversold`);
- lapsed: no hold is past its expiry, and no session of a lapsed or released reservation is
  still open at Stripe;
- bots (with `--locust-stats`, a sale's Locust stats CSV): every attempt of the `bots` scenario
  was refused, and no checkout was made for a bot's id (loadtests/verify_bots.py);
- rooms (with `--waiting-room`): no hold of a roomed SKU without an admission, no token used
  twice, neither the admission rate nor `max_active` ever exceeded, from each room's admissions
  log (admin `GET /v1/queue/{sku}` at PUBLIC_URL with RESERVATION_ADMIN_TOKEN;
  loadtests/verify_room.py);
- waiting lists (with `--waitlist`): offers in line order, no public hold while a line waited,
  no unit offered twice, every offer event received by the shop (`--shop-events`, the
  receiver's record; loadtests/verify_waitlist.py).
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stripe

from domain import errors
from domain.reservations import ReservationStatus, StockLevel
from domain.statuses import OrderStatus
from loadtests.verify_bots import attempts, bot_findings, bot_rows
from loadtests.verify_options import parse_args
from loadtests.verify_room import (
    TOKEN_AGAIN_ACCEPTED,
    read_holds,
    read_rooms,
    room_findings,
    room_summary,
)
from loadtests.verify_waitlist_read import waitlist_check
from persistence.mongo import Database, connect, storage_errors
from persistence.orders import Order, OrderRepository
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace
from reservation.lua.library import RedisClient
from reservation.operations.reconcile import sold_statuses
from reservation.payments.gate import stripe_client
from reservation.services import redis_client
from reservation.settings import Settings

LAPSED = (ReservationStatus.EXPIRED, ReservationStatus.RELEASED)
PAID = ("paid", "no_payment_required")


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    subject: str  # a SKU, a session, a pool
    detail: str

    def line(self) -> str:
        return f"{self.invariant:<9} {self.subject}: {self.detail}"


@dataclass
class World:
    """Everything the verifier reads, read once."""

    levels: list[StockLevel]
    lapsed_holds: dict[str, int]  # pool -> holds whose expiry has passed
    orders: list[Order]
    checkouts: dict[str, str]  # reservation id -> session id, as the service recorded them
    sessions: list[dict[str, Any]]  # Stripe's Checkout Sessions
    refunds: list[dict[str, Any]]  # Stripe's refunds
    statuses: dict[str, ReservationStatus | None] = field(default_factory=dict)  # None: unknown


@dataclass
class Report:
    violations: list[Violation]
    checked: dict[str, int]
    notes: list[str] = field(default_factory=list)  # what was measured, a line each

    @property
    def passed(self) -> bool:
        return not self.violations

    def text(self) -> str:
        counts = ", ".join(f"{n} {what}" for what, n in self.checked.items())
        notes = [f"  {note}" for note in self.notes]
        if self.passed:
            return "\n".join([f"verifier: every invariant holds ({counts})", *notes])
        lines = [f"verifier: {len(self.violations)} broken invariant(s) ({counts})", *notes]
        lines += [f"  {violation.line()}" for violation in self.violations]
        return "\n".join(lines)


def check(world: World, sold_as: Sequence[OrderStatus], merchant_refunds: bool = False) -> Report:
    """Every invariant over what was read; pure, so each can be shown to fail.
    `merchant_refunds`: refunds this service did not make are expected (see the module)."""
    found: list[Violation] = []
    found += _counters(world)
    found += _sold(world, sold_as)
    found += _held(world)
    found += _paid(world)
    found += _refunds(world, merchant_refunds)
    found += _lapsed(world)
    checked = {
        "SKUs": len(world.levels),
        "orders": len(world.orders),
        "sessions": len(world.sessions),
        "refunds": len(world.refunds),
    }
    return Report(found, checked)


def _counters(world: World) -> list[Violation]:
    found = []
    for level in world.levels:
        if min(level.total, level.reserved, level.sold) < 0:
            found.append(Violation("counters", level.sku, f"negative counter: {level}"))
        if level.reserved + level.sold > level.total:
            found.append(
                Violation(
                    "counters",
                    level.sku,
                    f"oversold: reserved {level.reserved} + sold {level.sold} > total "
                    f"{level.total}",
                )
            )
    return found


def _sold(world: World, sold_as: Sequence[OrderStatus]) -> list[Violation]:
    units: Counter[str] = Counter()
    for order in world.orders:
        if order.status in sold_as:
            for line in order.items:
                units[line.sku] += line.quantity
    found = []
    for level in world.levels:
        if level.sold != units[level.sku]:
            found.append(
                Violation(
                    "sold",
                    level.sku,
                    f"Redis says {level.sold} sold, orders say {units[level.sku]} "
                    f"({', '.join(status.value for status in sold_as)})",
                )
            )
    stocked = {level.sku for level in world.levels}
    for sku in sorted(set(units) - stocked):
        found.append(Violation("sold", sku, f"{units[sku]} sold in orders, not stocked in Redis"))
    return found


def _held(world: World) -> list[Violation]:
    return [
        Violation(
            "held",
            order.checkout_session_id,
            f"order for reservation {order.reservation_id}, which this service never held",
        )
        for order in world.orders
        if order.reservation_id not in world.checkouts
        and world.statuses.get(order.reservation_id) is None
    ]


def _paid(world: World) -> list[Violation]:
    by_session = Counter(order.checkout_session_id for order in world.orders)
    paid_sessions = {s["id"] for s in world.sessions if s.get("payment_status") in PAID}
    found = [
        Violation("paid", session_id, f"paid at Stripe, {by_session[session_id]} orders")
        for session_id in sorted(paid_sessions)
        if by_session[session_id] != 1
    ]
    found += [
        Violation("paid", order.checkout_session_id, "order is paid, the session is not")
        for order in world.orders
        if order.status is OrderStatus.PAID and order.checkout_session_id not in paid_sessions
    ]
    return found


def _refunds(world: World, merchant_refunds: bool) -> list[Violation]:
    orders = {order.checkout_session_id: order for order in world.orders}
    sessions = {s["id"]: s for s in world.sessions}
    session_of_intent = {
        s["payment_intent"]: s["id"] for s in world.sessions if s.get("payment_intent")
    }
    per_session: Counter[str] = Counter()
    merchants: Counter[str] = Counter()  # session -> amount the merchant refunded
    found = []
    for refund in world.refunds:
        session_id = session_of_intent.get(refund.get("payment_intent") or "", "?")
        order = orders.get(session_id)
        ours = (refund.get("metadata") or {}).get("reason") == "oversold"
        if merchant_refunds and not ours:
            merchants[session_id] += int(refund.get("amount") or 0)
            continue
        per_session[session_id] += 1
        if not ours or order is None or order.status is not OrderStatus.REFUNDED_OVERSOLD:
            status = "no order" if order is None else f"order {order.status.value}"
            why = "made by this service" if ours else "not made by this service"
            found.append(
                Violation("refunds", session_id, f"refund {refund['id']} ({why}) with {status}")
            )
    found += [
        Violation("refunds", session_id, f"{n} refunds")
        for session_id, n in sorted(per_session.items())
        if n > 1
    ]
    for session_id, refunded in sorted(merchants.items()):
        order = orders.get(session_id)
        charged = (sessions.get(session_id) or {}).get("amount_total")
        in_full = refunded == charged
        # Our refund of an oversold payment may come after the merchant's (of the rest).
        wanted = OrderStatus.REFUNDED if in_full else OrderStatus.PAID
        if order is None or order.status not in (wanted, OrderStatus.REFUNDED_OVERSOLD):
            status = "no order" if order is None else f"order {order.status.value}"
            found.append(
                Violation(
                    "refunds",
                    session_id,
                    f"the merchant refunded {refunded} of {charged} "
                    f"({'in full' if in_full else 'in part'}) with {status}",
                )
            )
    return found


def _lapsed(world: World) -> list[Violation]:
    found = [
        Violation("lapsed", f"pool {pool}", f"{n} holds past their expiry (sweep first)")
        for pool, n in sorted(world.lapsed_holds.items())
        if n
    ]
    for session in world.sessions:
        reservation_id = session.get("client_reference_id") or ""
        if session.get("status") == "open" and world.statuses.get(reservation_id) in LAPSED:
            status = world.statuses[reservation_id]
            assert status is not None
            found.append(
                Violation(
                    "lapsed",
                    session["id"],
                    f"still open at Stripe, its reservation is {status.value}",
                )
            )
    return found


# -- reading -----------------------------------------------------------------------------------


async def read_world(settings: Settings, stripe_client: stripe.StripeClient) -> World:
    assert settings.redis_url is not None
    assert settings.mongodb_uri is not None
    redis = redis_client(settings)  # a Redis Cluster too, as the service connects
    mongo, db = connect(settings.mongodb_uri, settings.mongodb_database)
    keys = KeySpace(settings.key_prefix)
    try:
        inventory = Inventory(redis, keys=keys)
        # Holds past their expiry are counted before anything is read through the scripts
        # (which give lapsed holds back as they go).
        now_ms = await _redis_now_ms(redis)
        pools = await inventory.pools.stocked()
        lapsed = {
            pool: int(await redis.zcount(keys.pool(pool).holds, "-inf", now_ms)) for pool in pools
        }
        levels = [level for pool in pools for level in await inventory.stock.levels(pool=pool)]
        orders = [order async for order in OrderRepository(db).with_status(tuple(OrderStatus))]
        checkouts = await _checkouts(db)
        sessions = await _list_all(stripe_client.v1.checkout.sessions.list_async)
        refunds = await _list_all(stripe_client.v1.refunds.list_async)
        world = World(levels, lapsed, orders, checkouts, sessions, refunds)
        wanted = {order.reservation_id for order in orders}
        wanted |= {s.get("client_reference_id") or "" for s in sessions} - {""}
        for reservation_id in sorted(wanted):
            world.statuses[reservation_id] = await _status(inventory, reservation_id)
        return world
    finally:
        await redis.aclose()
        await mongo.close()


async def _redis_now_ms(redis: RedisClient) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def _checkouts(db: Database) -> dict[str, str]:
    async with storage_errors():
        cursor = db["checkout_sessions"].find({}, {"reservation_id": 1, "session_id": 1})
        return {doc["reservation_id"]: doc["session_id"] async for doc in cursor}


async def _status(inventory: Inventory, reservation_id: str) -> ReservationStatus | None:
    try:
        return (await inventory.holds.get(reservation_id)).status
    except errors.NotFound:
        return None


async def _list_all(list_page: Any) -> list[dict[str, Any]]:
    """Every object of a Stripe list endpoint, page after page."""
    first = await list_page({"limit": 100})
    return [item.to_dict() async for item in first.auto_paging_iter()]


# -- command line ------------------------------------------------------------------------------


async def verify(
    settings: Settings,
    merchant_refunds: bool = False,
    locust_stats: Path | None = None,
    waiting_room: bool = False,
    shop_events: Path | None = None,
) -> Report:
    client, http_client = stripe_client(settings)
    try:
        world = await read_world(settings, client)
    finally:
        await http_client.close_async()  # type: ignore[no-untyped-call]
    report = check(world, sold_statuses(settings), merchant_refunds)
    if locust_stats is not None:
        rows = bot_rows(locust_stats)
        found = bot_findings(rows, world.sessions)
        report.violations += [Violation("bots", "the bots", line) for line in found]
        report.checked["bot attempts"] = attempts(rows)
    if waiting_room:
        await _rooms(settings, world, report, locust_stats)
    if shop_events is not None:
        lines, joins, summary = await waitlist_check(settings, shop_events)
        report.violations += [Violation(f.invariant, f.subject, f.detail) for f in lines]
        report.checked["waitlist joins"] = joins
        report.notes.append(summary)
    return report


async def _rooms(settings: Settings, world: World, report: Report, stats: Path | None) -> None:
    """The rooms' invariants (loadtests/verify_room.py) added to the report."""
    rooms = read_rooms(settings.public_url, settings.admin_token or "")
    named = {a.reservation_id for room in rooms for a in room.admissions if a.reservation_id}
    holds = await read_holds(settings, {*world.checkouts, *world.statuses, *named})
    for order in world.orders:
        holds.setdefault(order.reservation_id, frozenset(line.sku for line in order.items))
    again = sum(row.requests for row in bot_rows(stats, TOKEN_AGAIN_ACCEPTED)) if stats else 0
    found = room_findings(rooms, holds, again)
    report.violations += [Violation(f.invariant, f.subject, f.detail) for f in found]
    report.checked["admissions"] = sum(len(room.admissions) for room in rooms)
    report.notes += [room_summary(room) for room in rooms]


def main(argv: Sequence[str] | None = None) -> int:
    settings, args = parse_args(argv, __doc__)
    report = asyncio.run(
        verify(
            settings,
            args.merchant_refunds,
            args.locust_stats,
            args.waiting_room,
            args.shop_events if args.waitlist else None,
        )
    )
    print(report.text())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
