"""The HTTP benchmark's targets (issue 13): reserve against the floor in throughput and p99,
two workers against one, a crowd of connections against the usual load, and what the crowd
and a sold-out refusal ask of Redis."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadtests.http_cases import CROWD
from loadtests.http_measure import Row
from loadtests.reporting import fmt
from reservation.settings import Settings

Target = tuple[str, str, str, bool | None]  # check, target, measured, met (None: no figure)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    target: str
    value: float | None
    met: Callable[[float], bool]
    unit: str = ""


def speed(rows: Sequence[Row], case: str) -> Row | None:
    return next((row for row in rows if row.case == case), None)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def rps(row: Row | None) -> float | None:
    return None if row is None else row.requests_per_second


def p99(row: Row | None) -> float | None:
    return None if row is None else row.p99_ms


def against_floor(reserve: Row | None, floor: Row | None, name: str, said: str) -> list[Check]:
    """Reserve's throughput and p99 against a floor case's."""
    return [
        Check(
            f"reserve / {name}{said} (requests/s)",
            "≥ 0.75",
            ratio(rps(reserve), rps(floor)),
            lambda x: x >= 0.75,
        ),
        Check(
            f"reserve p99 / {name} p99{said}",
            "≤ 1.5",
            ratio(p99(reserve), p99(floor)),
            lambda x: x <= 1.5,
        ),
    ]


def server_us(row: Row | None) -> float | None:
    """The server's CPU time per request, in µs (its share of a core over the window)."""
    if row is None or not row.requests_per_second:
        return None
    return row.cpu.server / 100 / row.requests_per_second * 1e6


def token_costs(reserve: Row | None, token: Row | None, same: Row | None) -> list[Check]:
    """What verifying a customer token adds to a reserve's server time (issue 24)."""

    def extra(row: Row | None) -> float | None:
        with_token, without = server_us(row), server_us(reserve)
        return None if with_token is None or not without else (with_token / without - 1) * 100

    return [
        Check(
            "server time per reserve, a new buyer's HS256 token: % over none",
            "< 10",
            extra(token),
            lambda x: x < 10,
        ),
        Check(
            "server time per reserve, one buyer's token again: % over none",
            "< 10",
            extra(same),
            lambda x: x < 10,
        ),
    ]


def checks(rows: Sequence[Row], connections: int) -> list[Check]:
    reserve, floor = speed(rows, "reserve"), speed(rows, "floor")
    floor_post = speed(rows, "floor_post")
    two, crowd = speed(rows, "reserve_2_workers"), speed(rows, f"reserve_{CROWD}_connections")
    sold_out = speed(rows, "reserve_sold_out")
    pool = Settings.from_env().redis_pool_size

    def of(row: Row | None, value: Callable[[Row], float | None]) -> float | None:
        return None if row is None else value(row)

    return [
        *against_floor(reserve, floor, "floor", ""),
        # The same two targets against the floor answering the request a reserve gets (a POST
        # of the same body, read whole): what the app's own code costs, without the cost of
        # receiving a body, which the GET floor does not pay. Shown beside, not instead.
        *against_floor(reserve, floor_post, "floor_post", ", the same request"),
        *token_costs(reserve, speed(rows, "reserve_token"), speed(rows, "reserve_same_token")),
        Check(
            "2 workers / 1 worker (reserve)",
            "≥ 1.6",
            ratio(rps(two), rps(reserve)),
            lambda x: x >= 1.6,
        ),
        Check(
            f"reserve at {CROWD:,} connections / at {connections}",
            "≥ 0.8",
            ratio(rps(crowd), rps(reserve)),
            lambda x: x >= 0.8,
        ),
        Check(
            f"non-201 answers and socket errors at {CROWD:,} connections",
            "0",
            of(crowd, lambda r: r.non_2xx + r.socket_errors),
            lambda x: x == 0,
        ),
        Check(
            f"Redis connections of the server at {CROWD:,} connections",
            f"≤ {pool} (RESERVATION_REDIS_POOL_SIZE)",
            of(crowd, lambda r: r.server_redis_connections),
            lambda x: x <= pool,
        ),
        Check(
            "Redis commands per sold-out refusal",
            "≤ 0.05 (one re-check per RESERVATION_SOLD_OUT_CACHE_SECONDS)",
            of(sold_out, lambda r: r.redis_commands_per_request),
            lambda x: x <= 0.05,
        ),
    ]


def targets(rows: Sequence[Row], connections: int) -> list[Target]:
    """(check, target, measured, met); met None when a figure is missing."""
    result: list[Target] = []
    for check in checks(rows, connections):
        value = check.value
        met = None if value is None else check.met(value)
        if value is None:
            shown = "n/a"
        elif value == int(value):
            shown = f"{value:,.0f}"
        else:
            shown = fmt(value, 3 if value < 1 else 2)
        result.append((check.name, check.target, shown, met))
    return result


def missed(rows: Sequence[Row], connections: int) -> bool:
    return any(met is False for *_, met in targets(rows, connections))
