"""The HTTP benchmark's fallback load generator when wrk is not installed: asyncio clients on
one httpx client, one request after another (slower than the server: it measures itself)."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx

from loadtests.http_cases import Case, Load
from loadtests.http_tokens import bench_tokens
from loadtests.reporting import percentile_ms


async def run_httpx(url: str, case: Case, seconds: int, connections: int) -> Load:
    """`connections` asyncio clients, one request after another, for `seconds`."""
    latencies: list[float] = []
    non_2xx = errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"content-type": "application/json"} if case.body is not None else {}
    tokens = itertools.cycle(bench_tokens(case.tokens) if case.tokens else [None])
    deadline = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal non_2xx, errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                token = next(tokens)
                sent = headers if token is None else {**headers, "authorization": f"Bearer {token}"}
                response = await http.request(case.method, url, content=case.body, headers=sent)
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            non_2xx += not 200 <= response.status_code < 400

    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as http:
        await asyncio.gather(*(client(http) for _ in range(connections)))
    ordered = sorted(latencies)
    return Load(
        len(ordered),
        time.perf_counter() - started,
        non_2xx,
        errors,
        percentile_ms(ordered, 0.50),
        percentile_ms(ordered, 0.99),
    )
