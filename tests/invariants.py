"""The stock invariants (docs/design.md, "The stock model") and each customer's count of live
holds, checked by the model test and the fuzzing of the scripts; and the counters read straight
from Redis, without any script."""

from __future__ import annotations

from collections import Counter

from domain.reservations import StockLevel
from reservation.core.keys import PoolKeys
from reservation.lua.library import RedisClient

COUNTERS = ("total", "reserved", "sold", "limit")
HOLDS = ":holds|"  # usage field prefix: a customer's count of live holds (lua/_pool.lua)


def assert_counts_hold(level: StockLevel) -> None:
    """Nothing negative, and available + reserved + sold = total (available 0 while anyone
    waits in the SKU's waiting list's line)."""
    assert level.total >= 0, level
    assert level.reserved >= 0, level
    assert level.sold >= 0, level
    assert (level.max_per_customer or 0) >= 0, level
    assert level.reserved + level.sold <= level.total, level
    if level.waiting:  # nothing public while anyone waits in the SKU's line
        assert level.available == 0, level
    else:
        assert level.available + level.reserved + level.sold == level.total, level


def _decoded(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _whole(value: object, what: str) -> int:
    """A counter as Redis holds it: absent (0) or the decimal digits of a whole number."""
    if value is None:
        return 0
    text = _decoded(value)
    assert text.lstrip("-").isdigit(), f"{what} is not a whole number: {text!r}"
    return int(text)


async def stored_levels(client: RedisClient, pool_keys: PoolKeys, pool: str) -> list[StockLevel]:
    """Every SKU of a pool as its stock hash holds it (no script involved), each counter
    checked to be a whole number."""
    stored = await client.hgetall(pool_keys.stock)
    fields = {_decoded(name): value for name, value in stored.items()}
    levels = []
    for field in sorted(fields):
        sku, _, counter = field.rpartition(":")
        if counter != "total" or not sku:
            continue
        total, reserved, sold, limit = (
            _whole(fields.get(f"{sku}:{name}"), f"{sku}:{name}") for name in COUNTERS
        )
        levels.append(StockLevel(sku, pool, total, reserved, sold, limit or None))
    return levels


async def held_units(client: RedisClient, pool_keys: PoolKeys) -> Counter[str]:
    """Units per SKU in the pool's live holds, read from the members "<id>|<cart>|<customer>"."""
    held: Counter[str] = Counter()
    for member in await client.zrange(pool_keys.holds, 0, -1):
        _, cart, _ = _decoded(member).split("|", 2)
        for line in cart.split(","):
            sku, _, quantity = line.partition("=")
            held[sku] += int(quantity)
    return held


async def hold_counts(client: RedisClient, pool_keys: PoolKeys) -> Counter[str]:
    """Each customer's count of live holds as the pool's usage hash keeps it (none: 0)."""
    counts: Counter[str] = Counter()
    for field, value in (await client.hgetall(pool_keys.usage)).items():
        name = _decoded(field)
        if name.startswith(HOLDS):
            counts[name.removeprefix(HOLDS)] = _whole(value, name)
    return counts


async def assert_hold_counts_hold(client: RedisClient, pool_keys: PoolKeys) -> Counter[str]:
    """Each customer's count of live holds is the number of members of `holds` that are theirs
    (a count of 0 is no field at all); returns the counts."""
    members: Counter[str] = Counter()
    for member in await client.zrange(pool_keys.holds, 0, -1):
        _, _, customer = _decoded(member).split("|", 2)  # ids and carts never hold '|'
        if customer:
            members[customer] += 1
    counts = await hold_counts(client, pool_keys)
    assert all(count > 0 for count in counts.values()), counts
    assert counts == members, (counts, members)
    return counts
