"""Core benchmark: N concurrent buyers holding 1 unit of one hot SKU, five ways.

Run from the repository root, with Redis and PostgreSQL up:

    .venv/bin/python -m loadtests.bench_core
    .venv/bin/python -m loadtests.bench_core --concurrency 1 10 100 500 --seconds 5 \\
        --redis-url redis://127.0.0.1:6379/0 \\
        --postgres-dsn postgresql://postgres@127.0.0.1:5432/test

Strategies, each given the same stock and the same buyers:

- lua: this project's core, `Inventory.holds.reserve([("hot", 1)])` (one FCALL);
- floor: a one-command Lua script (INCR) on the same client, the round-trip floor;
- watch: WATCH / GET / MULTI DECR + SET / EXEC, retried on WatchError;
- lock: redis-py's Lock around GET, check, SET available - 1, SET the hold;
- postgres: SELECT ... FOR UPDATE on the stock row, UPDATE it, INSERT the hold, one
  transaction (Saleor's pattern), through a psycopg_pool of min(N, 100) connections at most.

Each buyer loops "hold 1 unit, record the latency" for --seconds. The stock is ample
(10^9 units), so no buyer is refused during that window. After each window the store's own
counters are checked against the holds granted; then a "scarce" phase gives the strategy
50 units and lets the same N buyers race until sold out. `oversold` is the worst of both.

A lua-only phase after `CONFIG RESETSTAT` reads `INFO commandstats` for the server-side
cost of one 1-SKU reserve (usec_per_call of FCALL); a floor-only phase does the same for
the fixed cost of a script call (EVALSHA and FCALL; loadtests/script_costs.py). CONFIG
RESETSTAT clears the server's stats for every client.

Needs psycopg 3 and psycopg-pool (`.venv/bin/pip install psycopg-pool`), matplotlib, and
uses uvloop when it is installed.

Writes docs/benchmarks/core.md, core.png and core.json (--json FILE for another path).
Every Redis key lives under a prefix of this run (deleted by SCAN at the end) and every
PostgreSQL table has a name of this run (dropped at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import psycopg
from matplotlib.figure import Figure
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from redis.exceptions import WatchError

from domain.outcomes import Held, OutOfStock
from loadtests.cleanup import delete_matching, redis_for_run
from loadtests.machine import DEFAULT_REDIS_URL, machine_info, run_loop
from loadtests.reporting import add_json_option, fmt, percentile_ms, report_header, write_report
from loadtests.script_costs import MEMORY_TARGET, Cost, Memory
from loadtests.script_costs import TARGETS as SCRIPT_TARGETS
from loadtests.script_costs import lines as script_cost_lines
from loadtests.script_costs import measure as measure_script_costs
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace
from reservation.stores.packing import connection_class

SKU = "hot"
AMPLE_STOCK = 10**9  # far above what any strategy can hold in a window (check_stock: <= 10^12)
SCARCE_STOCK = 50
SCARCE_TIMEOUT_SECONDS = 120.0
HOLD_SECONDS = 600  # the hold length every strategy writes (Inventory's default)
LOCK_TIMEOUT_SECONDS = 5.0  # the lock expires by itself after this (a crashed holder)
LOCK_WAIT_SECONDS = 1.0  # blocking_timeout: give up waiting, count a retry, try again
LOCK_POLL_SECONDS = 0.01  # redis-py's Lock polls SET NX this often while blocked (default 0.1)
PG_POOL_CAP = 100
PG_HEADROOM = 5  # connections left free for other PostgreSQL clients
STATS_CONCURRENCY = 10
STATS_SECONDS = 2.0
RATIO_AT = 100
DEFAULT_CONCURRENCY = (1, 10, 100, 500)
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
STRATEGIES = ("lua", "floor", "watch", "lock", "postgres")
FLOOR_LUA = "return redis.call('INCR', KEYS[1])"
DEFAULT_BASELINE = "cba9ca5"  # the last commit before issue 13 (the hot path)


def count(value: bytes | str | None) -> int:
    """A Redis counter's value; a missing counter is an error here, not zero."""
    if value is None:
        raise RuntimeError("the stock counter is gone")
    return int(value)


class Outcome(Enum):
    HELD = "held"
    SOLD_OUT = "sold out"
    GAVE_UP = "gave up"  # still retrying when the deadline passed


# -- strategies ------------------------------------------------------------------------------


class Strategy:
    """One way of holding 1 unit of SKU; subclasses fill in prepare / hold / taken."""

    name = "strategy"
    sells = True  # False: no stock at all (the floor), so there is nothing to oversell

    def __init__(self) -> None:
        self.retries = 0

    async def setup(self) -> None:
        """Once per run, before anything else."""

    async def start(self, concurrency: int) -> None:
        """Before the phases of one concurrency."""

    async def prepare(self, stock: int) -> None:
        """A fresh store holding `stock` units of SKU."""
        raise NotImplementedError

    async def hold(self, deadline: float) -> Outcome:
        """Hold 1 unit; a strategy that retries gives up once perf_counter() passes deadline."""
        raise NotImplementedError

    async def taken(self) -> int | None:
        """Units the store itself says are held or sold (None: the strategy sells nothing)."""
        raise NotImplementedError

    async def clear(self) -> None:
        """Drop what the last prepare and its holds wrote."""

    async def stop(self) -> None:
        """After the phases of one concurrency."""

    async def teardown(self) -> None:
        """Once per run, at the end, even after a failure."""


class RedisStrategy(Strategy):
    """A strategy on the shared Redis client; each prepare gets a key space of its own."""

    def __init__(self, client: Redis, prefix: str) -> None:
        super().__init__()
        self.client = client
        self.prefix = prefix
        self.phase = 0
        self.space = ""
        self.stock = 0

    def next_space(self) -> str:
        self.phase += 1
        self.space = f"{self.prefix}:{self.name}:{self.phase}"
        return self.space

    async def clear(self) -> None:
        await delete_matching(self.client, f"{self.space}:*")


class LuaStrategy(RedisStrategy):
    """This project's core: one reserve script call per hold."""

    name = "lua"

    async def prepare(self, stock: int) -> None:
        self.inventory = Inventory(self.client, keys=KeySpace(self.next_space()))
        await self.inventory.stock.set_stock(SKU, stock)

    async def hold(self, deadline: float) -> Outcome:
        outcome = await self.inventory.holds.reserve([(SKU, 1)])
        if isinstance(outcome, Held):
            return Outcome.HELD
        if isinstance(outcome, OutOfStock):
            return Outcome.SOLD_OUT
        raise RuntimeError(f"unexpected reserve outcome: {outcome!r}")

    async def taken(self) -> int:
        level = await self.inventory.stock.level(SKU)
        return level.reserved + level.sold


class FloorStrategy(RedisStrategy):
    """The round-trip floor: a one-command script (EVALSHA of INCR), no stock logic."""

    name = "floor"
    sells = False

    async def prepare(self, stock: int) -> None:
        self.counter = f"{self.next_space()}:counter"
        self.script = self.client.register_script(FLOOR_LUA)

    async def hold(self, deadline: float) -> Outcome:
        await self.script(keys=[self.counter])
        return Outcome.HELD

    async def taken(self) -> None:
        return None


class WatchStrategy(RedisStrategy):
    """Optimistic read-modify-write: WATCH, GET, MULTI DECR + SET the hold, EXEC; retry."""

    name = "watch"

    async def prepare(self, stock: int) -> None:
        self.stock_key = f"{self.next_space()}:stock:{SKU}"
        self.stock = stock
        await self.client.set(self.stock_key, stock)

    async def hold(self, deadline: float) -> Outcome:
        record = f"{self.space}:hold:{secrets.token_urlsafe(16)}"
        async with self.client.pipeline(transaction=True) as pipe:
            while time.perf_counter() < deadline:
                try:
                    await pipe.watch(self.stock_key)
                    if count(await pipe.get(self.stock_key)) < 1:
                        return Outcome.SOLD_OUT
                    pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
                    pipe.decr(self.stock_key)
                    pipe.set(record, f"{SKU}=1", ex=HOLD_SECONDS)
                    await pipe.execute()
                    return Outcome.HELD
                except WatchError:
                    self.retries += 1
        return Outcome.GAVE_UP

    async def taken(self) -> int:
        return self.stock - count(await self.client.get(self.stock_key))


class LockStrategy(RedisStrategy):
    """A redis-py Lock around GET, check, SET available - 1 and SET the hold."""

    name = "lock"

    async def prepare(self, stock: int) -> None:
        space = self.next_space()
        self.stock_key = f"{space}:stock:{SKU}"
        self.lock_name = f"{space}:lock:{SKU}"
        self.stock = stock
        await self.client.set(self.stock_key, stock)

    async def hold(self, deadline: float) -> Outcome:
        # One Lock object per hold: a Lock keeps its token per thread, and every buyer
        # coroutine runs on this one thread.
        lock = self.client.lock(
            self.lock_name,
            timeout=LOCK_TIMEOUT_SECONDS,
            sleep=LOCK_POLL_SECONDS,
            raise_on_release_error=False,  # a lock lost to expiry shows up as oversold
        )
        while not await lock.acquire(blocking_timeout=self.wait(deadline)):
            self.retries += 1
            if time.perf_counter() >= deadline:
                return Outcome.GAVE_UP
        try:
            return await self.take_one()
        finally:
            await lock.release()

    @staticmethod
    def wait(deadline: float) -> float:
        """blocking_timeout of one acquire: LOCK_WAIT_SECONDS, cut short by the deadline."""
        return max(0.0, min(LOCK_WAIT_SECONDS, deadline - time.perf_counter()))

    async def take_one(self) -> Outcome:
        available = count(await self.client.get(self.stock_key))
        if available < 1:
            return Outcome.SOLD_OUT
        record = f"{self.space}:hold:{secrets.token_urlsafe(16)}"
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(self.stock_key, available - 1)
            pipe.set(record, f"{SKU}=1", ex=HOLD_SECONDS)
            await pipe.execute()
        return Outcome.HELD

    async def taken(self) -> int:
        return self.stock - count(await self.client.get(self.stock_key))


class PostgresStrategy(Strategy):
    """SELECT ... FOR UPDATE the stock row, UPDATE it, INSERT the hold: one transaction."""

    name = "postgres"

    def __init__(self, dsn: str, tag: str) -> None:
        super().__init__()
        self.dsn = dsn
        self.stock_table = sql.Identifier(f"{tag}_stock")
        self.holds_table = sql.Identifier(f"{tag}_holds")
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] | None = None
        self.pool_sizes: dict[int, int] = {}
        self.tables_created = False
        self.select = self.query("SELECT available FROM {stock} WHERE sku = %s FOR UPDATE")
        self.update = self.query("UPDATE {stock} SET available = available - 1 WHERE sku = %s")
        self.insert = self.query(
            "INSERT INTO {holds} (id, sku, quantity, expires_at)"
            f" VALUES (%s, %s, 1, now() + interval '{HOLD_SECONDS} seconds')"
        )

    def query(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(stock=self.stock_table, holds=self.holds_table)

    async def execute(self, text: str, params: Sequence[object] = ()) -> list[TupleRow]:
        """One statement on a connection of its own (setup, checks, teardown)."""
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            cursor = await conn.execute(self.query(text), params)
            return await cursor.fetchall() if cursor.description else []

    async def setup(self) -> None:
        await self.execute(
            "CREATE TABLE {stock} (sku text PRIMARY KEY, total bigint NOT NULL,"
            " available bigint NOT NULL)"
        )
        self.tables_created = True
        await self.execute(
            "CREATE TABLE {holds} (id text PRIMARY KEY, sku text NOT NULL REFERENCES {stock},"
            " quantity integer NOT NULL, expires_at timestamptz NOT NULL)"
        )

    async def start(self, concurrency: int) -> None:
        size = min(concurrency, PG_POOL_CAP, await connection_budget(self.dsn))
        self.pool_sizes[concurrency] = size
        self.pool = AsyncConnectionPool(
            self.dsn, min_size=size, max_size=size, open=False, kwargs={"autocommit": True}
        )
        await self.pool.open(wait=True)

    async def prepare(self, stock: int) -> None:
        await self.execute("TRUNCATE {holds}, {stock}")
        await self.execute("INSERT INTO {stock} VALUES (%s, %s, %s)", (SKU, stock, stock))

    async def hold(self, deadline: float) -> Outcome:
        assert self.pool is not None, "start() opens the pool"
        async with self.pool.connection() as conn, conn.transaction():
            row = await (await conn.execute(self.select, (SKU,))).fetchone()
            if row is None or row[0] < 1:
                return Outcome.SOLD_OUT
            await conn.execute(self.update, (SKU,))
            await conn.execute(self.insert, (secrets.token_urlsafe(16), SKU))
            return Outcome.HELD

    async def taken(self) -> int:
        rows = await self.execute(
            "SELECT total - available, (SELECT count(*) FROM {holds}) FROM {stock} WHERE sku = %s",
            (SKU,),
        )
        by_counter, by_rows = (int(value) for value in rows[0])
        return max(by_counter, by_rows)

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    async def teardown(self) -> None:
        await self.stop()
        if self.tables_created:
            await self.execute("DROP TABLE IF EXISTS {holds}, {stock}")


# -- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One strategy at one concurrency; the first six fields are the JSON row."""

    strategy: str
    concurrency: int
    holds_per_second: float
    p50_ms: float | None
    p99_ms: float | None
    oversold: int | None  # None: the floor, which sells nothing
    holds: int
    retries: int
    gave_up: int
    seconds: float  # the whole run of this row: window, checks and scarce race

    def as_json(self) -> dict[str, Any]:
        row = asdict(self)
        for extra in ("holds", "retries", "gave_up", "seconds"):
            del row[extra]
        return row


@dataclass(frozen=True, slots=True)
class Window:
    holds: int
    seconds: float
    latencies: list[float]
    gave_up: int  # attempts still retrying when the window closed (not counted as holds)


async def measure(strategy: Strategy, concurrency: int, seconds: float) -> Window:
    """`concurrency` buyers each hold 1 unit after another until `seconds` elapse."""
    latencies: list[float] = []
    gave_up = 0
    deadline = time.perf_counter() + seconds

    async def buyer() -> None:
        nonlocal gave_up
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            outcome = await strategy.hold(deadline)
            if outcome is Outcome.GAVE_UP:
                gave_up += 1
                return
            if outcome is Outcome.SOLD_OUT:
                raise RuntimeError(f"{strategy.name}: refused for lack of stock; raise the stock")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(buyer() for _ in range(concurrency)))
    return Window(len(latencies), time.perf_counter() - started, latencies, gave_up)


async def race(strategy: Strategy, concurrency: int) -> int:
    """`concurrency` buyers hold 1 unit after another until sold out; returns units granted."""
    granted = 0
    deadline = time.perf_counter() + SCARCE_TIMEOUT_SECONDS

    async def buyer() -> None:
        nonlocal granted
        while (outcome := await strategy.hold(deadline)) is Outcome.HELD:
            granted += 1
        if outcome is Outcome.GAVE_UP:
            raise TimeoutError(f"{strategy.name}: the scarce race did not sell out in time")

    await asyncio.gather(*(buyer() for _ in range(concurrency)))
    return granted


async def oversold(strategy: Strategy, stock: int, granted: int, notes: list[str]) -> int | None:
    """Units sold beyond stock, by the buyers' count and by the store's own counters."""
    taken = await strategy.taken()
    if taken is None:
        return None
    if taken != granted:
        notes.append(f"{strategy.name}: buyers were granted {granted}, the store counts {taken}")
    return max(0, granted - stock, taken - stock)


async def run_one(strategy: Strategy, concurrency: int, seconds: float, notes: list[str]) -> Row:
    """The measured window with ample stock, then the scarce race, at one concurrency."""
    began = time.perf_counter()
    await strategy.start(concurrency)
    try:
        await strategy.prepare(AMPLE_STOCK)
        strategy.retries = 0
        window = await measure(strategy, concurrency, seconds)
        retries = strategy.retries
        worst = await oversold(strategy, AMPLE_STOCK, window.holds, notes)
        await strategy.clear()
        if strategy.sells:
            await strategy.prepare(SCARCE_STOCK)
            granted = await race(strategy, concurrency)
            scarce = await oversold(strategy, SCARCE_STOCK, granted, notes)
            worst = max(worst or 0, scarce or 0)
            await strategy.clear()
    finally:
        await strategy.stop()
    ordered = sorted(window.latencies)
    return Row(
        strategy=strategy.name,
        concurrency=concurrency,
        holds_per_second=window.holds / window.seconds,
        p50_ms=percentile_ms(ordered, 0.50),
        p99_ms=percentile_ms(ordered, 0.99),
        oversold=worst,
        holds=window.holds,
        retries=retries,
        gave_up=window.gave_up,
        seconds=time.perf_counter() - began,
    )


# -- plumbing --------------------------------------------------------------------------------


async def connection_budget(dsn: str) -> int:
    """PostgreSQL connections this run may open: max_connections less what others need."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int,"
            " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        )
        row = await cursor.fetchone()
    assert row is not None
    max_connections, reserved, in_use = (int(value) for value in row)
    return max(1, max_connections - reserved - in_use - PG_HEADROOM)


def make_strategies(names: Sequence[str], client: Redis, dsn: str, run: str) -> list[Strategy]:
    redis_kinds: dict[str, type[RedisStrategy]] = {
        "lua": LuaStrategy,
        "floor": FloorStrategy,
        "watch": WatchStrategy,
        "lock": LockStrategy,
    }
    strategies: list[Strategy] = []
    for name in names:
        if name == "postgres":
            strategies.append(PostgresStrategy(dsn, f"bench_core_{run}"))
        else:
            strategies.append(redis_kinds[name](client, f"bench-core-{run}"))
    return strategies


async def postgres_info(dsn: str) -> dict[str, str]:
    """The PostgreSQL server's rows of the machine table."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT current_setting('server_version'), current_setting('synchronous_commit'),"
            " current_setting('max_connections')"
        )
        row = await cursor.fetchone()
    assert row is not None
    version, sync_commit, max_conn = row
    return {
        "PostgreSQL": f"{version} (synchronous_commit {sync_commit}, max_connections {max_conn})",
        "psycopg": psycopg.__version__,
    }


# -- reporting -------------------------------------------------------------------------------


def table_lines(rows: Sequence[Row]) -> list[str]:
    header = ["strategy", "N", "holds/s", "p50 ms", "p99 ms", "oversold", "retries", "gave up"]
    body = [
        [
            row.strategy,
            str(row.concurrency),
            fmt(row.holds_per_second, 0),
            fmt(row.p50_ms, 3),
            fmt(row.p99_ms, 3),
            fmt(row.oversold),
            str(row.retries),
            str(row.gave_up),
        ]
        for row in rows
    ]
    return [f"| {' | '.join(cells)} |" for cells in [header, ["---"] * len(header), *body]]


def ratios(rows: Sequence[Row], at: int) -> dict[str, float | None]:
    """lua's throughput over each other strategy's, at concurrency `at`."""
    speed = {row.strategy: row.holds_per_second for row in rows if row.concurrency == at}
    lua = speed.get("lua")
    result: dict[str, float | None] = {}
    for other in ("floor", "watch", "postgres"):
        base = speed.get(other)
        result[f"lua/{other}"] = lua / base if lua and base else None
    return result


def targets(
    rows: Sequence[Row], costs: Sequence[Cost], memory: Sequence[Memory]
) -> list[tuple[str, str, str, str]]:
    """(check, target, measured, met) for each target of the issues."""
    at = ratios(rows, RATIO_AT)

    def verdict(value: float | None, ok: bool) -> str:
        return "n/a" if value is None or math.isnan(value) else ("yes" if ok else "**no**")

    checks = []
    floor = max((c.usec_per_call for c in costs if c.phase == "floor"), default=math.nan)
    for cost in costs:
        target = SCRIPT_TARGETS.get(cost.phase)
        if cost.version == "now" and target is not None:
            ratio = cost.usec_per_call / floor
            checks.append(
                (
                    f"{cost.phase}, server side / floor script",
                    f"≤ {target:g}",
                    f"{fmt(ratio)} ({fmt(cost.usec_per_call)} µs)",
                    verdict(ratio, ratio <= target),
                )
            )
    for held in memory:
        if held.version == "now":
            who = "a new customer id per hold" if held.customer else "no customer id"
            checks.append(
                (
                    f"Redis memory per live hold, {who}",
                    f"≤ {MEMORY_TARGET} B",
                    f"{held.bytes_per_hold:.0f} B",
                    verdict(held.bytes_per_hold, held.bytes_per_hold <= MEMORY_TARGET),
                )
            )
    for name, floor in (("lua/floor", 0.8), ("lua/watch", 10.0), ("lua/postgres", 5.0)):
        value = at[name]
        checks.append(
            (
                f"{name} at N = {RATIO_AT}",
                f"≥ {floor:g}",
                fmt(value),
                verdict(value, value is not None and value >= floor),
            )
        )
    counted = [row.oversold for row in rows if row.oversold is not None]
    worst = max(counted) if counted else None
    checks.append(
        (
            "oversold",
            "0 everywhere",
            f"max {fmt(worst)}",
            verdict(None if worst is None else float(worst), worst == 0),
        )
    )
    return checks


def markdown(
    rows: Sequence[Row],
    costs: Sequence[Cost],
    memory: Sequence[Memory],
    baseline: str | None,
    info: dict[str, str],
    command: str,
    notes: Sequence[str],
    pool_sizes: dict[int, int],
) -> str:
    lines = [
        *report_header("Core benchmark: one hot SKU", "loadtests/bench_core.py", command, info),
        "## Holds of 1 unit, N concurrent buyers",
        "",
        *table_lines(rows),
        "",
        "![holds per second against concurrency](core.png)",
        "",
        "## Server-side cost of each hot script, and memory per hold",
        "",
        "`INFO commandstats` after `CONFIG RESETSTAT` and a phase of one script alone"
        " (10 buyers, the same number of calls each phase, the quickest of 3 rounds): the"
        " script command's"
        " usec_per_call, and the commands it ran per call (loadtests/script_costs.py)."
        + (
            f" The baseline is the scripts of {baseline}, as they ran then (EVALSHA of the"
            " shared prelude and the script)."
            if baseline
            else ""
        ),
        "",
        *script_cost_lines(costs, memory, baseline),
        "",
        "## Targets",
        "",
        "| check | target | measured | met |",
        "| --- | --- | --- | --- |",
        *(f"| {' | '.join(check)} |" for check in targets(rows, costs, memory)),
        "",
        "## How it is measured",
        "",
        f"- One hot SKU with {AMPLE_STOCK:,} units, so no buyer is refused during the window;"
        " every strategy starts from the same stock. Each buyer (an asyncio task) holds 1 unit,"
        " records the latency, and repeats until the window ends; holds/s is holds divided by"
        " the time until the last buyer finished.",
        "- One `redis.asyncio` client for every Redis strategy, its connection pool larger than N,"
        " with the service's connection class (commands packed by hiredis:"
        " reservation/packing.py).",
        "- lua: `Inventory.holds.reserve([('hot', 1)])`, one FCALL of the reserve function."
        " floor: a one-command script (`INCR`) on the same client: the round-trip floor, it"
        " sells nothing, so it has no oversold figure.",
        "- watch: WATCH, GET, MULTI, DECR + SET of the hold, EXEC; retried on WatchError"
        " (retries counted; a hold counts only when EXEC succeeds).",
        f"- lock: redis-py `Lock` (timeout {LOCK_TIMEOUT_SECONDS:g} s, blocking_timeout"
        f" {LOCK_WAIT_SECONDS:g} s, polling every {LOCK_POLL_SECONDS * 1000:g} ms) around"
        " GET, check, SET available - 1 and SET of the hold; a timed-out wait counts as a"
        " retry.",
        "- postgres: `SELECT … FOR UPDATE` of the stock row, `UPDATE` it and `INSERT` the"
        " hold (with a foreign key to the stock row) in one transaction, through a"
        " psycopg_pool of min(N, 100, what max_connections leaves free) connections"
        f" (here: {', '.join(f'N={n}: {size}' for n, size in pool_sizes.items()) or 'n/a'}).",
        f"- oversold: after each window the store's own counters are compared with the holds"
        f" granted; then the strategy gets {SCARCE_STOCK} units and the same N buyers race"
        f" until sold out; oversold = max(0, granted - stock, counted by the store - stock).",
        "- retries: WatchError retries (watch) or lock waits that timed out (lock) during the"
        " window. gave up: buyers still retrying when the window closed; those attempts are"
        " not holds and their latency is not in p50 / p99.",
        "- Client, Redis and PostgreSQL share the same machine, so at high N the single Python"
        " process is usually the bottleneck, not the store.",
    ]
    if notes:
        lines += ["", "## Notes from this run", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def chart(rows: Sequence[Row], path: Path) -> None:
    figure = Figure(figsize=(8, 5))
    axes = figure.subplots()
    for name in dict.fromkeys(row.strategy for row in rows):
        points = [(row.concurrency, row.holds_per_second) for row in rows if row.strategy == name]
        axes.plot(*zip(*points, strict=True), marker="o", label=name)
    axes.set_xscale("log")
    levels = sorted({row.concurrency for row in rows})
    axes.set_xticks(levels, [str(level) for level in levels])
    axes.set_yscale("log")
    axes.set_xlabel("concurrent buyers (N, log scale)")
    axes.set_ylabel("holds per second (log scale)")
    axes.set_title("One hot SKU, 1-unit holds")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def report(
    rows: Sequence[Row],
    costs: Sequence[Cost],
    memory: Sequence[Memory],
    info: dict[str, str],
    args: argparse.Namespace,
    notes: Sequence[str],
    pool_sizes: dict[int, int],
) -> None:
    print("\n".join(table_lines(rows)))
    print()
    print("\n".join(script_cost_lines(costs, memory, args.baseline)))
    for name, value in ratios(rows, RATIO_AT).items():
        print(f"{name} at N = {RATIO_AT}: {fmt(value)}")
    for note in notes:
        print(f"note: {note}")
    command = ("python -m loadtests.bench_core " + shlex.join(sys.argv[1:])).strip()
    write_report(
        "core",
        markdown(rows, costs, memory, args.baseline, info, command, notes, pool_sizes),
        lambda path: chart(rows, path),
        {
            "rows": [row.as_json() for row in rows],
            "scripts": [cost.as_json() for cost in costs],
            "memory": [
                {"version": m.version, "customer": m.customer, "bytes_per_hold": m.bytes_per_hold}
                for m in memory
            ],
        },
        args.json,
    )


# -- main ------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> int:
    run = secrets.token_hex(4)
    concurrency: list[int] = args.concurrency
    notes: list[str] = []
    rows: list[Row] = []
    # The service's connections (commands packed by hiredis: reservation/packing.py), for
    # every Redis strategy alike.
    options = {
        "max_connections": max(concurrency) + 16,
        "connection_class": connection_class(args.redis_url),
    }
    async with redis_for_run(args.redis_url, f"bench-core-{run}", **options) as client:
        strategies = make_strategies(args.strategies, client, args.postgres_dsn, run)
        try:
            info = await machine_info(client)
            if "postgres" in args.strategies:
                info |= await postgres_info(args.postgres_dsn)
            for strategy in strategies:
                await strategy.setup()
            for n in concurrency:
                for strategy in strategies:
                    row = await run_one(strategy, n, args.seconds, notes)
                    rows.append(row)
                    print(
                        f"{row.strategy:>8} N={n:<4} {row.holds_per_second:>10,.0f} holds/s"
                        f"  p99 {fmt(row.p99_ms, 3)} ms  oversold {fmt(row.oversold)}"
                        f"  ({row.seconds:.1f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
            costs, memory = await measure_script_costs(
                client, f"bench-core-{run}:scripts", args.baseline, args.script_calls, args.holds
            )
        finally:
            for strategy in strategies:
                await strategy.teardown()
    pool_sizes = next(
        (s.pool_sizes for s in strategies if isinstance(s, PostgresStrategy)), dict[int, int]()
    )
    report(rows, costs, memory, info, args, notes, pool_sizes)
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench_core",
        description="Holds per second and latency of one hot SKU: lua, floor, watch, lock,"
        " postgres.",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=list(DEFAULT_CONCURRENCY),
        metavar="N",
        help="concurrent buyers, one run each (default: 1 10 100 500)",
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="measured window per run (default: 5)"
    )
    add_json_option(parser, "core")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument(
        "--baseline",
        default=DEFAULT_BASELINE,
        help="git revision whose scripts are measured beside today's (default: %(default)s,"
        " before issue 13; '' for none)",
    )
    parser.add_argument(
        "--script-calls", type=int, default=20000, help="calls per script phase (default: 20000)"
    )
    parser.add_argument(
        "--holds", type=int, default=60000, help="holds of the memory measure (default: 60000)"
    )
    parser.add_argument("--postgres-dsn", default=DEFAULT_POSTGRES_DSN)
    parser.add_argument(
        "--strategies",
        nargs="+",
        choices=STRATEGIES,
        default=list(STRATEGIES),
        help="which strategies to run (default: all)",
    )
    args = parser.parse_args(argv)
    if min(args.concurrency) < 1 or args.seconds <= 0:
        parser.error("--concurrency values must be >= 1 and --seconds > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_loop(bench(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
