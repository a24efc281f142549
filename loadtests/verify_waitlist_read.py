"""What the waiting-list checks (loadtests/verify_waitlist.py) read: the joins from MongoDB's
`waitlist_joins` with their entries' places from each pool's Redis `waitlist` hash, the events
from `shop_events`, every reservation record of the pools, the SKUs' totals, and the shop
receiver's record. It changes nothing (every hold has lapsed or ended before: the rehearsal
sweeps first)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from domain import errors
from domain.reservations import Reservation
from loadtests.shop_receiver import read_record
from loadtests.verify_waitlist import (
    Hold,
    Join,
    LineFinding,
    Lines,
    ShopEvent,
    waitlist_findings,
    waitlist_summary,
)
from persistence.mongo import Database, as_utc, connect, storage_errors
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace
from reservation.lua.library import RedisClient
from reservation.services import redis_client
from reservation.settings import Settings


async def read_lines(settings: Settings, record: Path) -> Lines:
    """Everything the checks need, read once."""
    assert settings.mongodb_uri is not None
    redis = redis_client(settings)
    mongo, db = connect(settings.mongodb_uri, settings.mongodb_database)
    keys = KeySpace(settings.key_prefix)
    try:
        inventory = Inventory(redis, keys=keys)
        pools = sorted(await inventory.pools.stocked())
        entries: dict[tuple[str, str], list[str]] = {}
        for pool in pools:
            entries |= await _entries(redis, keys, pool)
        totals = {
            level.sku: level.total
            for pool in pools
            for level in await inventory.stock.levels(pool=pool)
        }
        holds: list[Hold] = []
        for pool in pools:
            holds += await _holds(redis, inventory, keys, pool)
        joins = await _joins(db, entries)
        events = await _events(db)
    finally:
        await redis.aclose()
        await mongo.close()
    received = [(str(line["id"]), bool(line["first"])) for line in read_record(record)]
    return Lines(joins, events, holds, totals, received)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


async def _entries(
    redis: RedisClient, keys: KeySpace, pool: str
) -> dict[tuple[str, str], list[str]]:
    """(SKU, customer) -> the entry's fields `[status, seq, quantity, joined ms, offer id,
    offer expires ms]`, from the pool's `waitlist` hash (its other fields skipped)."""
    raw = await redis.hgetall(keys.pool(pool).waitlist)
    found = {}
    for name, value in raw.items():
        field, text = _text(name), _text(value)
        if field.startswith(("@", ":")) or "|" not in field:
            continue
        sku, _, customer = field.partition("|")
        found[(sku, customer)] = text.split("|", 5)
    return found


async def _holds(redis: RedisClient, inventory: Inventory, keys: KeySpace, pool: str) -> list[Hold]:
    """Every reservation record of the pool, a `Hold` per line of it."""
    prefix = keys.pool(pool).record_prefix
    ids = sorted(
        {_text(key)[len(prefix) :] async for key in redis.scan_iter(keys.pool(pool).records)}
    )
    found = []
    for reservation_id in ids:
        try:
            found += _hold_lines(await inventory.holds.get(reservation_id))
        except errors.NotFound:
            continue
    return found


def _ms(when: datetime) -> int:
    return round(as_utc(when).timestamp() * 1000)


def _hold_lines(reservation: Reservation) -> list[Hold]:
    return [
        Hold(
            reservation_id=reservation.id,
            sku=line.sku,
            quantity=line.quantity,
            customer_id=reservation.customer_id,
            created_ms=_ms(reservation.created_at),
            expires_ms=_ms(reservation.expires_at),
            status=reservation.status.value,
        )
        for line in reservation.items
    ]


async def _joins(db: Database, entries: dict[tuple[str, str], list[str]]) -> list[Join]:
    """Each customer's latest join of each SKU, its place from Redis (else its answered place
    behind every entry Redis knows)."""
    async with storage_errors():
        documents = await db["waitlist_joins"].find({}).to_list()
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in documents:
        key = (doc["sku"], doc["customer_id"])
        if key not in latest or latest[key]["joined_at"] < doc["joined_at"]:
            latest[key] = doc
    return [_join(doc, entries.get(key)) for key, doc in sorted(latest.items())]


def _join(doc: dict[str, Any], entry: Sequence[str] | None) -> Join:
    joined = _ms(doc["joined_at"])
    left = None if doc.get("left_at") is None else _ms(doc["left_at"])
    if entry is None or len(entry) < 6:
        return Join(
            doc["sku"],
            doc["customer_id"],
            10**12 + doc["position"],
            joined,
            int(doc["quantity"]),
            left,
        )
    return Join(
        sku=doc["sku"],
        customer_id=doc["customer_id"],
        seq=int(entry[1]),
        joined_ms=joined,
        quantity=int(doc["quantity"]),
        left_ms=left,
        status=entry[0],
        offer_id=entry[4],
    )


async def _events(db: Database) -> list[ShopEvent]:
    async with storage_errors():
        documents = await db["shop_events"].find({}, {"_id": False}).to_list()
    found = []
    for doc in documents:
        data = doc["body"]["data"]
        found.append(
            ShopEvent(
                event_id=doc["event_id"],
                kind=str(doc["type"]).removeprefix("waitlist."),
                sku=data["sku"],
                customer_id=doc["customer_id"],
                reservation_id=data["reservation_id"],
                quantity=int(data["quantity"]),
                at_ms=int(doc["at_ms"]),
                pool=doc["pool"],
                seq=int(doc["seq"]),
                delivered=doc["state"] == "delivered",
            )
        )
    return found


async def waitlist_check(settings: Settings, record: Path) -> tuple[list[LineFinding], int, str]:
    """The waiting lists' findings, how many joins were checked, and the summary line."""
    lines = await read_lines(settings, record)
    return waitlist_findings(lines), len(lines.joins), waitlist_summary(lines)
