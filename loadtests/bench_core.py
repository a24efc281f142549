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

This module is the command line; the pieces are modules of their own: core_strategies (lua,
floor, watch, lock) and core_postgres, core_measure (the window and the scarce race),
script_costs (the script-cost and memory phases), core_report; and machine, cleanup,
reporting, shared with bench_http.
"""

import argparse
import secrets
import sys
from collections.abc import Sequence

from redis.asyncio import Redis

from loadtests.cleanup import redis_for_run
from loadtests.core_measure import Row, run_one
from loadtests.core_postgres import PostgresStrategy, postgres_info
from loadtests.core_report import report
from loadtests.core_strategies import (
    FloorStrategy,
    LockStrategy,
    LuaStrategy,
    RedisStrategy,
    Strategy,
    WatchStrategy,
)
from loadtests.machine import DEFAULT_REDIS_URL, machine_info, run_loop
from loadtests.reporting import add_json_option, fmt
from loadtests.script_costs import measure as measure_script_costs

DEFAULT_CONCURRENCY = (1, 10, 100, 500)
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
STRATEGIES = ("lua", "floor", "watch", "lock", "postgres")
DEFAULT_BASELINE = "cba9ca5"  # the last commit before issue 13 (the hot path)


def make_strategies(names: Sequence[str], client: Redis, dsn: str, run: str) -> list[Strategy]:
    """The strategies named, in that order, each with names of this run's own."""
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


async def bench(args: argparse.Namespace) -> int:
    """Every strategy at every concurrency, then the script costs; the report written."""
    run = secrets.token_hex(4)
    concurrency: list[int] = args.concurrency
    notes: list[str] = []
    rows: list[Row] = []
    # redis-py's connections, as the service's, for every Redis strategy alike.
    options = {"max_connections": max(concurrency) + 16}
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
