"""The PostgreSQL strategy of bench_core: SELECT ... FOR UPDATE the stock row, UPDATE it,
INSERT the hold, in one transaction (Saleor's pattern), through a pool sized to what the
server leaves free; and the server's rows of the machine table."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from loadtests.core_strategies import HOLD_SECONDS, SKU, Outcome, Strategy

PG_POOL_CAP = 100
PG_HEADROOM = 5  # connections left free for other PostgreSQL clients


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
