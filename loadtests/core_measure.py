"""One strategy at one concurrency: the measured window with ample stock (holds/s, p50, p99),
then the scarce race until sold out, each checked against the store's own counters."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

from loadtests.core_strategies import Outcome, Strategy
from loadtests.reporting import percentile_ms

AMPLE_STOCK = 10**9  # far above what any strategy can hold in a window (check_stock: <= 10^12)
SCARCE_STOCK = 50
SCARCE_TIMEOUT_SECONDS = 120.0


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
