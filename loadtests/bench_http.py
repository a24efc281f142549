"""HTTP benchmark: `reservation serve` under wrk, against a bare Starlette + Redis floor.

Run from the repository root, with Redis up (REDIS_URL, default redis://127.0.0.1:6379/0)
and wrk installed (Debian: `apt-get install wrk`); MongoDB is MONGODB_URI when set, else an
nx-27017 in a temporary directory:

    .venv/bin/python -m loadtests.bench_http
    .venv/bin/python -m loadtests.bench_http --seconds 5 --connections 64 --json /tmp/http.json

Cases, each a warm-up of 2 s and then a window of --seconds (default 10) under
`wrk -t2 -c64 --latency`, against servers started as subprocesses on loopback ports:

- reserve: POST /v1/reservations of 1 unit of a SKU with 10^11 units (201);
- reserve_sold_out: the same POST on a SKU with stock 0 (409 insufficient_stock, by design);
- get_product: GET /v1/products/{sku} (one Redis script call: counters and catalog entry);
- list_products: GET /v1/products with 20 SKUs (one Redis script call for their pool);
- floor: `floor_app` below, one route doing one Redis GET and answering a small JSON, served
  by `python -m uvicorn loadtests.bench_http:floor_app` exactly as `reservation serve` runs
  the API (uvloop + httptools, 1 worker, no access log);
- reserve_2_workers: reserve against `reservation serve --workers 2`.

After every window the server's own count of answers (/metrics, 1 worker) and the SKU's
`reserved` counter (GET /v1/products/{sku}) are compared with what wrk saw. When a target is
missed, the reserve case and the floor are profiled with py-spy (`--native`) while wrk drives
them, and the samples are summed by owner (uvicorn, starlette, redis-py, our code, syscalls,
the garbage collector ...).

The floor applies the service's garbage-collector settings after start-up (gc.freeze and
reservation.app.GC_YOUNG_THRESHOLD), so the two differ only in the code a request runs. The
profile needs py-spy (`pip install py-spy`; ptrace rights, e.g. root). Without wrk it falls
back to an httpx client (much slower than the server: it measures the client).

Writes docs/benchmarks/http.md, http.png and http.json (--json FILE for another path). Every
Redis key lives under a prefix of this run (deleted by SCAN at the end), the MongoDB database
has a name of this run (dropped at the end), and every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

# Only what the floor app needs is imported here: uvicorn imports this module to serve
# floor_app, whose process should hold what a bare Starlette app holds (importing bench_core,
# httpx, pymongo and fakeredis here doubles its heap). The benchmark's own tools are imported
# where they are used.
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    import httpx

ROOT = Path(__file__).resolve().parent.parent
SKU = "hot"
SOLD_OUT_SKU = "gone"
STOCK = 10**11  # far above what a run can hold (the API takes at most 10^12)
WARMUP_SECONDS = 2
DEFAULT_SECONDS = 10
DEFAULT_CONNECTIONS = 64
WRK_THREADS = 2
READY_SECONDS = 30.0
STOP_SECONDS = 10.0
SETTLE_SECONDS = 0.2  # poll period while waiting for the server to answer queued requests
SETTLE_TRIES = 25
PROFILE_SECONDS = 5
PROFILE_RATE = 200  # samples per second
PROFILED = ("reserve", "get_product", "floor")
FLOOR_PATH = "/floor"
RESERVE_BODY = json.dumps({"items": [{"sku": SKU, "quantity": 1}]}, separators=(",", ":"))
SOLD_OUT_BODY = RESERVE_BODY.replace(f'"{SKU}"', f'"{SOLD_OUT_SKU}"')
UNCOUNTED = {"floor": "n/a (no /metrics)", "app2": "n/a (2 workers: per-process metrics)"}
ROUTE_OF = {
    "reserve": "/v1/reservations",
    "get_product": "/v1/products/{sku}",
    "list_products": "/v1/products",
}
LISTED_SKUS = 20  # the list case's catalog: SKU, SOLD_OUT_SKU and these others
WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\": %d, \"duration_us\": %d, \"non_2xx\": %d, \"connect\": %d," ..
    " \"read\": %d, \"write\": %d, \"timeout\": %d, \"p50_us\": %.1f, \"p99_us\": %.1f}\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


# -- the floor: a bare Starlette app, one Redis GET ---------------------------------------------


@contextlib.asynccontextmanager
async def floor_lifespan(app: Starlette) -> AsyncIterator[None]:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    client = Redis.from_url(url, max_connections=1024)
    app.state.redis = client
    app.state.key = floor_key(os.environ.get("RESERVATION_KEY_PREFIX", "bench-http"))
    same_gc_as_the_service()
    try:
        yield
    finally:
        await client.aclose()


async def floor_endpoint(request: Request) -> JSONResponse:
    client: Redis = request.app.state.redis
    value = await client.get(request.app.state.key)
    return JSONResponse({"value": value.decode() if isinstance(value, bytes) else value})


floor_app = Starlette(
    routes=[Route(FLOOR_PATH, floor_endpoint, methods=["GET"])], lifespan=floor_lifespan
)


def same_gc_as_the_service() -> None:
    """The collector settings reservation.app applies after start-up, so the floor differs
    from the service only in the code a request runs, not in how the runtime collects."""
    from reservation.app import GC_YOUNG_THRESHOLD

    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def floor_key(prefix: str) -> str:
    return f"{prefix}:floor"


def fmt(value: float | int | None, digits: int = 2) -> str:
    from loadtests.bench_core import fmt as core_fmt

    return core_fmt(value, digits)


def api_client(base_url: str, seconds: float = 10.0, **headers: str) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(base_url=base_url, timeout=seconds, headers=headers)


# -- cases, loads, rows ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    server: str  # "app" (1 worker), "floor" or "app2" (2 workers)
    method: str
    path: str
    expected_status: int
    body: str | None = None
    counts_sku: str | None = None  # the SKU whose `reserved` counter must match the 201s

    @property
    def route(self) -> str | None:
        """The route template the server's /metrics counts this case's answers under."""
        if self.server != "app":
            return None
        if self.name in ROUTE_OF:
            return ROUTE_OF[self.name]
        return ROUTE_OF["get_product" if self.method == "GET" else "reserve"]


CASES = (
    Case("reserve", "app", "POST", "/v1/reservations", 201, RESERVE_BODY, SKU),
    Case("reserve_sold_out", "app", "POST", "/v1/reservations", 409, SOLD_OUT_BODY, SOLD_OUT_SKU),
    Case("get_product", "app", "GET", f"/v1/products/{SKU}", 200),
    Case("list_products", "app", "GET", "/v1/products", 200),
    Case("floor", "floor", "GET", FLOOR_PATH, 200),
    Case("reserve_2_workers", "app2", "POST", "/v1/reservations", 201, RESERVE_BODY, SKU),
)


@dataclass(frozen=True, slots=True)
class Load:
    """What the load generator saw over one window."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float | None
    p99_ms: float | None

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Cpu:
    """CPU time over one window, in percent of one core."""

    server: float
    wrk: float
    redis: float
    mongo: float  # nan: an outside MongoDB (MONGODB_URI), not measured
    machine: float  # every process on the machine (at most 100 % per core)
    steal: float  # time the hypervisor gave the cores to someone else

    def text(self) -> str:
        shares = (self.server, self.wrk, self.redis, self.mongo, self.machine)
        return " / ".join("n/a" if math.isnan(x) else f"{x:.0f}%" for x in shares)


@dataclass(frozen=True, slots=True)
class Tally:
    """Answers seen by the client, counted by the server, and the SKU's counter moved."""

    case: str
    expected_status: int
    client_2xx: int
    client_non_2xx: int
    server_statuses: dict[str, int] | None  # None: more than one worker (per-process metrics)
    reserved_delta: int | None
    connections: int
    uncounted: str = ""  # why the server did not count its answers

    @property
    def server_expected(self) -> int | None:
        if self.server_statuses is None:
            return None
        return self.server_statuses.get(str(self.expected_status), 0)

    @property
    def unexpected(self) -> int:
        """Answers other than the expected status (by the server's count when there is one)."""
        if self.server_statuses is not None:
            expected = str(self.expected_status)
            return sum(n for status, n in self.server_statuses.items() if status != expected)
        return self.client_non_2xx if self.expected_status < 300 else self.client_2xx

    @property
    def consistent(self) -> bool:
        if self.reserved_delta is None:
            return self.unexpected == 0
        if self.expected_status >= 300:
            return self.reserved_delta == 0 and self.unexpected == 0
        if self.server_expected is not None and self.server_expected != self.reserved_delta:
            return False
        # Requests in flight when wrk stops are answered by the server but not read by wrk.
        in_flight = self.reserved_delta - self.client_2xx
        return 0 <= in_flight <= self.connections and self.unexpected == 0


@dataclass(frozen=True, slots=True)
class Row:
    """One case; the first five fields are the JSON row."""

    case: str
    requests_per_second: float
    p50_ms: float | None
    p99_ms: float | None
    ratio_to_floor: float | None
    requests: int
    non_2xx: int
    socket_errors: int
    expected_status: int
    cpu: Cpu

    def as_json(self) -> dict[str, Any]:
        row = asdict(self)
        for extra in ("requests", "non_2xx", "socket_errors", "expected_status", "cpu"):
            del row[extra]
        return row


# -- processes ---------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    process: asyncio.subprocess.Process
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def open_log(path: Path) -> IO[bytes]:
    return path.open("wb")


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def start_server(
    name: str, argv: Sequence[str], env: dict[str, str], workdir: Path, ready_path: str
) -> Server:
    """Start a server in a session of its own and wait until `ready_path` answers 200."""
    port = free_port()
    log = workdir / f"{name}-{port}.log"
    handle = open_log(log)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            "--port",
            str(port),
            env=env,
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        handle.close()
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    try:
        await wait_ready(server, ready_path)
    except BaseException:
        await stop_server(server)
        raise
    return server


async def wait_ready(server: Server, ready_path: str) -> None:
    import httpx

    deadline = time.monotonic() + READY_SECONDS
    async with api_client(server.url, 1.0) as http:
        while time.monotonic() < deadline:
            if server.process.returncode is not None:
                raise RuntimeError(f"{server.name} exited:\n{log_tail(server.log)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(ready_path)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(
        f"{server.name} was not ready in {READY_SECONDS:g} s:\n{log_tail(server.log)}"
    )


async def stop_server(server: Server) -> None:
    """SIGTERM (uvicorn stops its workers), then SIGKILL whatever is left of its session."""
    process = server.process
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the session is this server's alone


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (uvicorn's workers)."""
    found = [pid]
    for parent in found:
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU of this process's reaped children (wrk runs), user + system."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def redis_cpu_seconds(client: Redis) -> float:
    stats = await client.info("cpu")
    return float(stats["used_cpu_user"]) + float(stats["used_cpu_sys"])


# -- load generators ---------------------------------------------------------------------------


def wrk_script(case: Case) -> str:
    lines = [f'wrk.method = "{case.method}"']
    if case.body is not None:
        lines += [f"wrk.body = [[{case.body}]]", 'wrk.headers["Content-Type"] = "application/json"']
    return "\n".join(lines) + "\n" + WRK_DONE


def write_script(case: Case, workdir: Path) -> Path:
    path = workdir / f"{case.name}.lua"
    path.write_text(wrk_script(case), encoding="utf-8")
    return path


def parse_wrk(output: str) -> Load:
    """The BENCH_JSON line our done() hook prints: the figures behind wrk's own summary."""
    match = re.search(r"^BENCH_JSON (.*)$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    data = json.loads(match.group(1))
    return Load(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        non_2xx=int(data["non_2xx"]),
        socket_errors=sum(int(data[k]) for k in ("connect", "read", "write", "timeout")),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


async def run_wrk(url: str, script: Path, seconds: int, connections: int) -> Load:
    process = await asyncio.create_subprocess_exec(
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output.decode()}")
    return parse_wrk(output.decode())


async def run_httpx(url: str, case: Case, seconds: int, connections: int) -> Load:
    """The fallback without wrk: `connections` asyncio clients, one request after another."""
    import httpx

    from loadtests.bench_core import percentile_ms

    latencies: list[float] = []
    non_2xx = errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"content-type": "application/json"} if case.body is not None else {}
    deadline = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal non_2xx, errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                response = await http.request(case.method, url, content=case.body, headers=headers)
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


@dataclass
class Driver:
    """Runs the load generator the same way for every case."""

    connections: int
    workdir: Path
    use_wrk: bool

    async def load(self, url: str, case: Case, seconds: int) -> Load:
        if self.use_wrk:
            return await run_wrk(url, write_script(case, self.workdir), seconds, self.connections)
        return await run_httpx(url, case, seconds, self.connections)


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything one benchmark run shares."""

    args: argparse.Namespace
    driver: Driver
    redis: Redis
    prefix: str
    database: str
    token: str
    mongodb_uri: str
    mongo_pid: int | None  # the embedded nx-27017, when this run started one
    workdir: Path
    notes: list[str] = field(default_factory=list)
    tallies: list[Tally] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_URL": self.args.redis_url,
            "MONGODB_URI": self.mongodb_uri,
            "MONGODB_DATABASE": self.database,
            "RESERVATION_ADMIN_TOKEN": self.token,
            "RESERVATION_KEY_PREFIX": self.prefix,
            "RESERVATION_DATA_DIR": str(self.workdir / "data"),
        }


async def reserved(http: httpx.AsyncClient, sku: str) -> int:
    response = await http.get(f"/v1/products/{sku}")
    response.raise_for_status()
    return int(response.json()["reserved"])


async def answered(http: httpx.AsyncClient, route: str) -> Counter[str]:
    """Answers per status the server's /metrics counted under `route` (one process)."""
    from prometheus_client.parser import text_string_to_metric_families

    response = await http.get("/metrics")
    response.raise_for_status()
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(response.text):
        if family.name != "reservation_http_request_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels.get("route") == route:
                counts[sample.labels["status"]] += int(sample.value)
    return counts


async def measure(run: Run, server: Server, case: Case) -> tuple[Load, Cpu, Tally]:
    """Warm up, then one window, with the server's counters read around it."""
    url = server.url + case.path
    await run.driver.load(url, case, WARMUP_SECONDS)
    async with api_client(server.url) as http:
        await quiesce(http, case)
        before = await reserved(http, case.counts_sku) if case.counts_sku else 0
        statuses = await answered(http, case.route) if case.route else Counter[str]()
        pids = process_tree(server.process.pid)
        cpu = await cpu_snapshot(run, pids)
        began = time.perf_counter()
        load = await run.driver.load(url, case, run.args.seconds)
        wall = time.perf_counter() - began
        cpu_after = await cpu_snapshot(run, pids)
        await quiesce(http, case)
        after = await reserved(http, case.counts_sku) if case.counts_sku else 0
        if case.route:
            statuses = await answered(http, case.route) - statuses
    usage = Cpu(*(100 * (b - a) / wall for a, b in zip(cpu, cpu_after, strict=True)))
    tally = Tally(
        case.name,
        case.expected_status,
        load.requests - load.non_2xx,
        load.non_2xx,
        dict(statuses) if case.route else None,
        after - before if case.counts_sku else None,
        run.args.connections,
        "" if case.route else UNCOUNTED[case.server],
    )
    return load, usage, tally


async def progress(http: httpx.AsyncClient, case: Case) -> int:
    """A counter that moves while the server still answers requests of `case`."""
    if case.counts_sku:
        return await reserved(http, case.counts_sku)
    if case.route:
        return sum((await answered(http, case.route)).values())
    return 0


async def quiesce(http: httpx.AsyncClient, case: Case) -> None:
    """Wait until the requests queued when the last load stopped are answered."""
    last = None
    for _ in range(SETTLE_TRIES):
        now = await progress(http, case)
        if now == last:
            return
        last = now
        await asyncio.sleep(SETTLE_SECONDS)


async def cpu_snapshot(run: Run, server_pids: Sequence[int]) -> tuple[float, ...]:
    """CPU seconds so far: the server, wrk (reaped children), Redis, nx-27017, all, steal."""
    mongo = cpu_seconds([run.mongo_pid]) if run.mongo_pid else math.nan
    redis = await redis_cpu_seconds(run.redis)
    busy, steal = machine_cpu_seconds()
    return cpu_seconds(server_pids), children_cpu_seconds(), redis, mongo, busy, steal


def machine_cpu_seconds() -> tuple[float, float]:
    """Busy and stolen CPU seconds of the whole machine since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / tick, steal / tick


def row_of(case: Case, load: Load, cpu: Cpu) -> Row:
    return Row(
        case=case.name,
        requests_per_second=load.per_second,
        p50_ms=load.p50_ms,
        p99_ms=load.p99_ms,
        ratio_to_floor=None,
        requests=load.requests,
        non_2xx=load.non_2xx,
        socket_errors=load.socket_errors,
        expected_status=case.expected_status,
        cpu=cpu,
    )


def with_ratios(rows: Sequence[Row]) -> list[Row]:
    floor = next((row.requests_per_second for row in rows if row.case == "floor"), None)
    return [
        replace(row, ratio_to_floor=row.requests_per_second / floor if floor else None)
        for row in rows
    ]


@contextlib.asynccontextmanager
async def serving(run: Run, kind: str) -> AsyncIterator[Server]:
    """One server of the benchmark, stopped (and its log checked) when the block ends."""
    if kind == "floor":
        argv = [sys.executable, "-m", "uvicorn", "loadtests.bench_http:floor_app"]
        argv += ["--workers", "1", "--no-access-log", "--log-level", "warning"]
        ready = FLOOR_PATH
    else:
        workers = "2" if kind == "app2" else "1"
        argv = [sys.executable, "-m", "reservation", "serve", "--workers", workers]
        ready = "/readyz"
    server = await start_server(kind, argv, run.env(), run.workdir, ready)
    try:
        yield server
    finally:
        await stop_server(server)
        run.logs.append(server.log)


async def setup_products(server: Server, token: str) -> None:
    async with api_client(server.url, authorization=f"Bearer {token}") as http:
        others = [(f"shelf-{n:02d}", 100) for n in range(LISTED_SKUS - 2)]
        for sku, stock in ((SKU, STOCK), (SOLD_OUT_SKU, 0), *others):
            body = {"name": sku, "price": 1000, "currency": "eur", "stock": stock}
            (await http.put(f"/v1/products/{sku}", json=body)).raise_for_status()


async def run_cases(run: Run) -> list[Row]:
    rows: dict[str, Row] = {}
    for kind in ("app", "floor", "app2"):
        async with serving(run, kind) as server:
            if kind == "app":
                await setup_products(server, run.token)
            for case in (c for c in CASES if c.server == kind):
                load, cpu, tally = await measure(run, server, case)
                rows[case.name] = row_of(case, load, cpu)
                run.tallies.append(tally)
                print_progress(rows[case.name], tally)
    return with_ratios([rows[case.name] for case in CASES])


def print_progress(row: Row, tally: Tally) -> None:
    print(
        f"{row.case:>18} {row.requests_per_second:>9,.0f} req/s  p50 {fmt(row.p50_ms)} ms"
        f"  p99 {fmt(row.p99_ms)} ms  non-2xx {row.non_2xx}  socket errors {row.socket_errors}"
        f"  cpu server/wrk/redis/mongo {row.cpu.text()}"
        f"  | {tally_text(tally)}",
        file=sys.stderr,
        flush=True,
    )


def tally_text(tally: Tally) -> str:
    parts = [f"client: {tally.client_2xx} 2xx, {tally.client_non_2xx} non-2xx"]
    if tally.server_statuses is not None:
        parts.append(f"server: {dict(sorted(tally.server_statuses.items()))}")
    if tally.reserved_delta is not None:
        parts.append(f"reserved +{tally.reserved_delta}")
        if tally.expected_status < 300:
            parts.append(f"in flight at stop {tally.reserved_delta - tally.client_2xx}")
    parts.append("consistent" if tally.consistent else "INCONSISTENT")
    return "; ".join(parts)


# -- targets -----------------------------------------------------------------------------------


def speed(rows: Sequence[Row], case: str) -> Row | None:
    return next((row for row in rows if row.case == case), None)


def targets(rows: Sequence[Row], connections: int) -> list[tuple[str, str, str, bool | None]]:
    """(check, target, measured, met); met None when a figure is missing."""
    reserve, sold_out = speed(rows, "reserve"), speed(rows, "reserve_sold_out")
    two, product = speed(rows, "reserve_2_workers"), speed(rows, "get_product")

    def ratio(row: Row | None, base: Row | None) -> float | None:
        if row is None or base is None or not base.requests_per_second:
            return None
        return row.requests_per_second / base.requests_per_second

    checks: list[tuple[str, str, float | None, float, bool]] = [
        ("reserve / floor", "≥ 0.75", reserve.ratio_to_floor if reserve else None, 0.75, True),
        ("sold-out / floor", "≥ 0.9", sold_out.ratio_to_floor if sold_out else None, 0.9, True),
        ("get_product / floor", "≥ 0.9", product.ratio_to_floor if product else None, 0.9, True),
        (
            f"reserve p99 at {connections} connections",
            "≤ 20 ms",
            reserve.p99_ms if reserve else None,
            20.0,
            False,
        ),
        ("2 workers / 1 worker (reserve)", "≥ 1.5", ratio(two, reserve), 1.5, True),
    ]
    result: list[tuple[str, str, str, bool | None]] = []
    for name, target, value, bound, at_least in checks:
        met = None if value is None else (value >= bound if at_least else value <= bound)
        shown = f"{fmt(value)} ms" if "p99" in name else fmt(value)
        result.append((name, target, shown, met))
    return result


# -- profiling ---------------------------------------------------------------------------------

SYSCALLS = {"write", "read", "writev", "readv", "send", "sendto", "sendmsg", "recv", "recvfrom"}
SYSCALLS |= {"recvmsg", "epoll_wait", "epoll_pwait", "__libc_write", "__libc_read"}
OWNERS = (  # (label, file prefixes or names); the first frame from the leaf up that matches
    ("uvicorn (Python: protocol, ASGI cycle)", ("uvicorn/",)),
    ("starlette (middleware, routing, request, response)", ("starlette/",)),
    ("redis-py (pool, command packing, reply parsing)", ("redis/",)),
    ("reservation (our code)", ("reservation/", "persistence/")),
    ("prometheus_client (RequestTimer, counters)", ("prometheus_client/",)),
    ("msgspec (C: JSON decode / encode)", ("msgspec/",)),
    ("hiredis (C)", ("hiredis", "reader.c", "read.c")),
    ("httptools / llhttp (C parser)", ("httptools/", "parser.c", "llhttp", "api.c", "http.c")),
    ("asyncio (tasks, futures, streams)", ("asyncio/", "_asynciomodule.c")),
    ("uvloop / libuv (C event loop, transports)", ("uvloop/", "loop.c", "core.c", "stream.c")),
)
GC_LABEL = "garbage collector (gc_collect_main)"
GROUPS = (  # owners summed: first word of the owner label -> group
    (
        "HTTP framework: uvicorn, starlette, asyncio, uvloop, httptools",
        ("uvicorn", "starlette", "asyncio", "uvloop", "httptools"),
    ),
    ("Redis client: redis-py, hiredis", ("redis-py", "hiredis")),
    (
        "the service: our code, msgspec, prometheus_client",
        ("reservation", "msgspec", "prometheus_client"),
    ),
    ("kernel: socket syscalls", ("syscalls",)),
    ("garbage collector", ("garbage",)),
)
SYSCALL_LABEL = "syscalls (socket write/read, epoll) via libc"
MARKERS = (  # inclusive: samples with this function anywhere in the stack
    ("create_reservation", "the handler, create_reservation (all of it)"),
    ("Inventory.reserve", "  Inventory.reserve (redis-py EVALSHA, send + parse)"),
    ("read_json", "  read_json (body + msgspec decode)"),
    ("json_response", "  json_response (msgspec encode + Response)"),
    ("RequestResponseCycle.send", "uvicorn RequestResponseCycle.send (answer + socket write)"),
    ("data_received", "uvicorn data_received (httptools parse, new ASGI cycle)"),
    ("MetricWrapperBase", "prometheus_client metrics (labels / observe / inc)"),
    ("gc_collect", "garbage collector"),
)


@dataclass(frozen=True, slots=True)
class Profile:
    case: str
    samples: int
    owners: list[tuple[str, int]]
    leaves: list[tuple[str, int]]
    inclusive: list[tuple[str, int]]
    load: Load


def split_frame(frame: str) -> tuple[str, str]:
    """'func (file)' -> (func, file)."""
    func, _, rest = frame.rpartition(" (")
    return (func, rest.rstrip(")")) if func else (frame, "")


def owner(frames: Sequence[str]) -> str:
    if any(split_frame(frame)[0].startswith("gc_collect") for frame in frames):
        return GC_LABEL
    func, where = split_frame(frames[-1])
    if where.startswith("libc") and func in SYSCALLS:
        return SYSCALL_LABEL
    for frame in reversed(frames):
        func, where = split_frame(frame)
        for label, marks in OWNERS:
            if any(where.startswith(mark) or where == mark for mark in marks):
                return label
        if func.startswith("uv_") or func.startswith("uv__"):
            return OWNERS[-1][0]
    return "other (CPython runtime, stdlib)"


def stacks(raw: str) -> Iterator[tuple[list[str], int]]:
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def summarize(case: str, raw: str, load: Load) -> Profile:
    owners: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, count in stacks(raw):
        total += count
        owners[owner(frames)] += count
        leaves[frames[-1]] += count
        for marker, label in MARKERS:
            if any(marker in frame for frame in frames):
                inclusive[label] += count
    return Profile(
        case,
        total,
        owners.most_common(),
        leaves.most_common(10),
        [(label, inclusive[label]) for _, label in MARKERS],
        load,
    )


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def profile(run: Run, case: Case) -> Profile | None:
    """py-spy --native on a fresh 1-worker server while wrk drives `case`."""
    binary = py_spy()
    if binary is None:
        run.notes.append("py-spy is not installed: no profile (pip install py-spy)")
        return None
    path = run.workdir / f"{case.name}-profile.txt"
    async with serving(run, case.server) as server:
        url = server.url + case.path
        await run.driver.load(url, case, WARMUP_SECONDS)
        driving = asyncio.create_task(run.driver.load(url, case, PROFILE_SECONDS + 3))
        await asyncio.sleep(1.0)
        spy = await asyncio.create_subprocess_exec(
            *(binary, "record", "--pid", str(server.process.pid), "--native", "--nolineno"),
            *("--duration", str(PROFILE_SECONDS), "--rate", str(PROFILE_RATE)),
            *("--format", "raw", "--output", str(path)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output, _ = await spy.communicate()
        load = await driving
    if spy.returncode != 0 or not path.exists():
        run.notes.append(f"py-spy failed on {case.name}: {output.decode(errors='replace')[-300:]}")
        return None
    return summarize(case.name, path.read_text(), load)


async def profiles(run: Run) -> list[Profile]:
    """The reserve and product cases, and the floor beside them for comparison."""
    found = [await profile(run, case) for case in CASES if case.name in PROFILED]
    return [one for one in found if one is not None]


# -- reporting ---------------------------------------------------------------------------------


def table_lines(rows: Sequence[Row]) -> list[str]:
    header = ["case", "requests/s", "p50 ms", "p99 ms", "ratio to floor", "requests"]
    header += ["non-2xx", "socket errors", "CPU server / wrk / redis / mongo / machine"]
    body = [
        [
            row.case,
            fmt(row.requests_per_second, 0),
            fmt(row.p50_ms),
            fmt(row.p99_ms),
            fmt(row.ratio_to_floor),
            f"{row.requests:,}",
            f"{row.non_2xx:,}"
            + (
                f" (all {row.expected_status}, expected)"
                if row.expected_status >= 300 and row.non_2xx == row.requests
                else ""
            ),
            str(row.socket_errors),
            row.cpu.text(),
        ]
        for row in rows
    ]
    return [f"| {' | '.join(cells)} |" for cells in [header, ["---"] * len(header), *body]]


def target_lines(rows: Sequence[Row], connections: int) -> list[str]:
    lines = ["| check | target | measured | met |", "| --- | --- | --- | --- |"]
    for name, target, measured, met in targets(rows, connections):
        verdict = "n/a" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {name} | {target} | {measured} | {verdict} |")
    return lines


def tally_lines(tallies: Sequence[Tally]) -> list[str]:
    lines = [
        "| case | expected | 2xx seen by wrk | non-2xx seen by wrk | answers counted by the"
        " server | `reserved` moved by | consistent |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in tallies:
        statuses = (
            t.uncounted
            if t.server_statuses is None
            else ", ".join(f"{s}: {n:,}" for s, n in sorted(t.server_statuses.items()))
        )
        delta = "n/a" if t.reserved_delta is None else f"{t.reserved_delta:,}"
        lines.append(
            f"| {t.case} | {t.expected_status} | {t.client_2xx:,} | {t.client_non_2xx:,}"
            f" | {statuses} | {delta} | {'yes' if t.consistent else '**no**'} |"
        )
    return lines


def percent(count: int, total: int) -> str:
    return f"{100 * count / total:.1f} %" if total else "n/a"


def share_table(title: str, found: Sequence[Profile], counts: list[dict[str, int]]) -> list[str]:
    """One row per label, one column per profile: share of that profile's samples."""
    labels = list(dict.fromkeys(label for count in counts for label in count))
    header = f"| {title} | " + " | ".join(f"{one.case} (% of samples)" for one in found) + " |"
    lines = [header, "| --- |" + " --- |" * len(found)]
    for label in labels:
        pairs = zip(found, counts, strict=True)
        cells = [percent(count.get(label, 0), one.samples) for one, count in pairs]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def grouped(found: Profile) -> dict[str, int]:
    """Owner samples summed into GROUPS (the rest: other)."""
    sums: Counter[str] = Counter()
    for label, count in found.owners:
        first = label.split()[0]
        group = next((name for name, firsts in GROUPS if first in firsts), "other")
        sums[group] += count
    return {name: sums[name] for name, _ in GROUPS} | {"other": sums["other"]}


def profile_lines(found: Sequence[Profile]) -> list[str]:
    if not found:
        return ["No profile: every target was met, or py-spy was unavailable (see notes)."]
    under = ", ".join(
        f"{one.case} {one.load.per_second:,.0f} req/s ({one.samples:,} samples)" for one in found
    )
    reserve = found[0]
    return [
        f"`py-spy record --native --rate {PROFILE_RATE}` for {PROFILE_SECONDS} s on a fresh"
        " 1-worker server while wrk drove the case with the same load. py-spy pauses the"
        " process for each sample, so the servers ran slower under it:"
        f" {under}. Shares are of samples in which the server was running (not idle).",
        "",
        "Self time by owner: each sample goes to the first frame, from the leaf up, that"
        " belongs to a package; CPython runtime frames (malloc, refcounts, the eval loop) are"
        " charged to the Python code that ran them, syscalls and the garbage collector are"
        " their own rows.",
        "",
        *share_table("group", found, [grouped(one) for one in found]),
        "",
        "In detail:",
        "",
        *share_table("owner", found, [dict(one.owners) for one in found]),
        "",
        "Inclusive: samples with the function anywhere on the stack.",
        "",
        *share_table("frame", found, [dict(one.inclusive) for one in found]),
        "",
        f"Hottest leaf frames of {reserve.case}:",
        "",
        "| leaf frame | share |",
        "| --- | --- |",
        *(f"| `{leaf}` | {percent(n, reserve.samples)} |" for leaf, n in reserve.leaves),
    ]


def markdown(
    rows: Sequence[Row],
    run: Run,
    info: dict[str, str],
    command: str,
    found: Sequence[Profile],
) -> str:
    args = run.args
    from loadtests.bench_core import report_header

    lines = [
        *report_header(
            "HTTP benchmark: the reservation API under wrk",
            "loadtests/bench_http.py",
            command,
            info,
        ),
        f"## Results ({args.connections} connections, {WRK_THREADS} wrk threads,"
        f" {args.seconds} s per case)",
        "",
        *table_lines(rows),
        "",
        "![requests per second per case](http.png)",
        "",
        "## Targets",
        "",
        *target_lines(rows, args.connections),
        "",
        *latency_lines(rows, args.connections),
        "",
        "## Correctness",
        "",
        "wrk counts the answers it read; the server counts the answers it sent (its /metrics"
        " `reservation_http_request_seconds_count` by status, one worker only: metrics are per"
        " process) and the SKU's `reserved` counter (GET /v1/products/{sku}) moves once per hold."
        " A reserve is consistent when the server's 201s equal the counter's move and wrk saw"
        f" at most {args.connections} fewer (requests in flight when wrk closed its"
        " connections: answered by the server, never read by wrk).",
        "",
        *tally_lines(run.tallies),
        "",
        "## How it is measured",
        "",
        *(f"- {item}" for item in method_items(run)),
        "",
        "## Where the time goes",
        "",
        *profile_lines(found),
    ]
    if run.notes:
        lines += ["", "## Notes from this run", "", *(f"- {note}" for note in run.notes)]
    return "\n".join(lines) + "\n"


def latency_lines(rows: Sequence[Row], connections: int) -> list[str]:
    """What the p99 target asks for, by Little's law, next to the floor's own p99."""
    by_case = {row.case: row for row in rows}
    means = ", ".join(
        f"{row.case} {1000 * connections / row.requests_per_second:.1f} ms"
        for row in rows
        if row.requests_per_second
    )
    floor = by_case.get("floor")
    floor_p99 = f" The floor's own p99 here is {fmt(floor.p99_ms)} ms." if floor else ""
    return [
        f"With {connections} connections always busy, the mean latency is connections /"
        f" throughput (Little's law): {means}. A p99 of 20 ms at {connections} connections"
        f" therefore needs at least {connections / 0.020:,.0f} req/s from one worker and"
        f" almost no spread (no pause longer than a few ms).{floor_p99}"
    ]


def method_items(run: Run) -> list[str]:
    args = run.args
    mongo = (
        "MONGODB_URI."
        if "MONGODB_URI" in os.environ
        else "nx-27017 (MongoDB wire protocol over SQLite) in a temporary directory"
        " (reservation.embedded.EmbeddedMongo)."
    )
    tool = (
        f"`wrk -t{WRK_THREADS} -c{args.connections} -d{args.seconds}s --latency` with a Lua"
        " script (method, JSON body, Content-Type, and a done() hook printing wrk's own summary"
        " figures: requests, duration, `Non-2xx or 3xx responses`, socket errors, and the 50th"
        " and 99th percentile of the latency histogram `--latency` prints)"
        if run.driver.use_wrk
        else "an httpx asyncio client (wrk was not installed): it is slower than the server,"
        " so these figures measure the client more than the server"
    )
    return [
        f"Load: {tool}; requests/s = requests / duration. Each case gets a {WARMUP_SECONDS} s"
        " warm-up with the same load first, not counted.",
        "**The machine has 2 cores (nproc above), and wrk, the server, Redis and MongoDB share"
        " them** with whatever else runs on it. The CPU column is percent of one core over the"
        " window: /proc for the server's processes and nx-27017, getrusage for wrk, Redis' INFO"
        " cpu (which also counts other clients of that Redis), and /proc/stat for the whole"
        " machine (at most 200 %; what it has beyond the other four is everything else,"
        " including the kernel's loopback networking). One worker tops out at 100 %; two"
        " workers get what wrk, Redis and the rest leave of the second core, not a free core"
        " each. Absolute figures are lower than on a dedicated server.",
        "Servers: `python -m reservation serve --port P --workers 1|2` (uvicorn, uvloop +"
        " httptools, no access log, log level warning) with REDIS_URL, MONGODB_URI, a"
        " MONGODB_DATABASE, RESERVATION_KEY_PREFIX of this run and a random admin token;"
        f" products `{SKU}` (stock {STOCK:,}), `{SOLD_OUT_SKU}` (stock 0) and {LISTED_SKUS - 2}"
        " others (stock 100) are created with PUT /v1/products/{sku}.",
        f"reserve: POST /v1/reservations `{RESERVE_BODY}` (201; holds of 600 s, none lapse"
        " during the run). reserve_sold_out: the same on the SKU with stock 0, answered 409"
        " `insufficient_stock` by design, so its non-2xx count is expected. get_product: GET"
        f" /v1/products/{SKU} (one snapshot script call: the counters and the catalog entry a"
        f" PUT keeps beside them; no MongoDB call). list_products: GET /v1/products with"
        f" {LISTED_SKUS} SKUs in one pool (one snapshot script call).",
        "floor: `loadtests.bench_http:floor_app`, a bare Starlette app with one route doing one"
        " Redis GET (redis.asyncio, a pool of up to 1024 connections like the service's) and"
        " answering a small JSONResponse; no middleware, no body, no validation; the same"
        " garbage-collector settings as the service after start-up (gc.freeze, young"
        " generation threshold reservation.app.GC_YOUNG_THRESHOLD); served by"
        " `python -m uvicorn loadtests.bench_http:floor_app --workers 1 --no-access-log` with"
        " the same uvicorn defaults as `reservation serve` (loop auto = uvloop, http auto ="
        " httptools). ratio_to_floor = requests/s of the case / requests/s of the floor.",
        "reserve_2_workers: the reserve case against `reservation serve --workers 2` (uvicorn's"
        " supervisor and 2 worker processes, one listening socket).",
        f"MongoDB: {mongo} Only start-up and the PUTs touch it; no case reads it.",
        "After the run every server is stopped (SIGTERM, then SIGKILL of anything left in its"
        " session), the Redis keys of the run prefix are deleted (SCAN + UNLINK) and the MongoDB"
        " database is dropped.",
    ]


def chart(rows: Sequence[Row], connections: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    names = [row.case for row in rows]
    values = [row.requests_per_second for row in rows]
    colors = ["tab:gray" if name == "floor" else "tab:blue" for name in names]
    bars = axes.bar(names, values, color=colors)
    for bar, row in zip(bars, rows, strict=True):
        label = f"{row.requests_per_second:,.0f}"
        if row.ratio_to_floor is not None and row.case != "floor":
            label += f"\n(x{row.ratio_to_floor:.2f} of floor)"
        axes.annotate(
            label,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    axes.set_ylabel("requests per second")
    axes.set_title(f"reservation API under wrk ({connections} connections, 2 cores shared)")
    axes.set_ylim(0, max(values, default=1) * 1.2)
    axes.tick_params(axis="x", labelsize=8)
    axes.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def machine_notes(rows: Sequence[Row]) -> list[str]:
    """Windows in which something besides the benchmark took CPU (other work, the hypervisor)."""
    notes = []
    stolen = [f"{row.case} {row.cpu.steal:.0f}%" for row in rows if row.cpu.steal >= 2]
    if stolen:
        notes.append(f"CPU stolen by the hypervisor (percent of one core): {', '.join(stolen)}")
    busy = [f"{row.case} {others(row.cpu):.0f}%" for row in rows if others(row.cpu) >= 25]
    if busy:
        notes.append(
            "CPU used beyond the server, wrk, Redis and nx-27017 (other work on the machine, and"
            f" the kernel's interrupt time), in percent of one core: {', '.join(busy)}; those"
            " windows had less CPU for the benchmark."
        )
    return notes


def others(cpu: Cpu) -> float:
    mongo = 0.0 if math.isnan(cpu.mongo) else cpu.mongo
    return cpu.machine - cpu.server - cpu.wrk - cpu.redis - mongo


def server_log_notes(logs: Sequence[Path]) -> list[str]:
    """Errors and tracebacks the servers logged (they log at warning level)."""
    notes = []
    for log in logs:
        text = log.read_text(errors="replace") if log.exists() else ""
        bad = [
            line
            for line in text.splitlines()
            if re.search(r"error|traceback|exception|critical", line, re.IGNORECASE)
        ]
        if bad:
            notes.append(f"server log {log.name}: {len(bad)} error lines, first: `{bad[0][:200]}`")
    return notes


def report(rows: Sequence[Row], run: Run, info: dict[str, str], found: Sequence[Profile]) -> None:
    print("\n".join(table_lines(rows)))
    print()
    print("\n".join(target_lines(rows, run.args.connections)))
    print()
    for tally in run.tallies:
        print(f"{tally.case}: {tally_text(tally)}")
    if found:
        print("\n".join(profile_lines(found)))
    for note in run.notes:
        print(f"note: {note}")
    from loadtests.bench_core import DOCS

    command = ("python -m loadtests.bench_http " + shlex.join(sys.argv[1:])).strip()
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "http.md").write_text(markdown(rows, run, info, command, found), encoding="utf-8")
    chart(rows, run.args.connections, DOCS / "http.png")
    dumped = json.dumps([row.as_json() for row in rows], indent=2) + "\n"
    json_paths = list(dict.fromkeys([DOCS / "http.json", Path(run.args.json).resolve()]))
    for path in json_paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumped, encoding="utf-8")
    written = [DOCS / "http.md", DOCS / "http.png", *json_paths]
    print(f"\nwrote {', '.join(str(path) for path in written)}")


# -- main --------------------------------------------------------------------------------------


def tool_versions(use_wrk: bool) -> dict[str, str]:
    packages = ("uvicorn", "uvloop", "httptools", "starlette", "msgspec")
    info = {"server stack": ", ".join(f"{name} {version(name)}" for name in packages)}
    if use_wrk:
        first = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        info["load generator"] = (first.stdout or first.stderr).split("Copyright")[0].strip()
    else:
        info["load generator"] = f"httpx {version('httpx')} (wrk not installed)"
    info["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info["code under test"] = git_revision()
    return info


def git_revision() -> str:
    """The commit served, and whether the service's code differs from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "-uno", "--", "reservation", "persistence")
    return (
        f"{commit}{' + changes to tracked files of reservation/ or persistence/' if dirty else ''}"
    )


async def bench(
    args: argparse.Namespace, mongodb_uri: str, mongo_pid: int | None, workdir: Path
) -> int:
    from loadtests.bench_core import delete_matching, machine_info

    run_id = secrets.token_hex(4)
    client = Redis.from_url(args.redis_url)
    use_wrk = shutil.which("wrk") is not None
    run = Run(
        args=args,
        driver=Driver(args.connections, workdir, use_wrk),
        redis=client,
        prefix=f"bench-http-{run_id}",
        database=f"bench_http_{run_id}",
        token=secrets.token_urlsafe(24),
        mongodb_uri=mongodb_uri,
        mongo_pid=mongo_pid,
        workdir=workdir,
    )
    if not use_wrk:
        run.notes.append("wrk is not installed: the httpx fallback measured these figures")
    found: list[Profile] = []
    try:
        info = {**await machine_info(client, "", False), **tool_versions(use_wrk)}
        await client.set(floor_key(run.prefix), "1")
        rows = await run_cases(run)
        missed = any(met is False for *_, met in targets(rows, args.connections))
        if missed and args.profile:
            found = await profiles(run)
    finally:
        await delete_matching(client, f"{run.prefix}:*")
        await client.aclose()
        drop_database(mongodb_uri, run.database)
    run.notes += machine_notes(rows) + server_log_notes(run.logs)
    report(rows, run, info, found)
    return 0


def drop_database(uri: str, name: str) -> None:
    import pymongo

    mongo: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
    try:
        mongo.drop_database(name)
    finally:
        mongo.close()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from loadtests.bench_core import DEFAULT_REDIS_URL, DOCS

    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench_http",
        description="Requests per second and latency of the reservation API under wrk,"
        " against a bare Starlette + Redis floor.",
    )
    parser.add_argument(
        "--seconds",
        type=int,
        default=DEFAULT_SECONDS,
        help=f"measured window per case, whole seconds (default: {DEFAULT_SECONDS})",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=DEFAULT_CONNECTIONS,
        help=f"open connections of the load generator (default: {DEFAULT_CONNECTIONS})",
    )
    parser.add_argument(
        "--json",
        default=str(DOCS / "http.json"),
        metavar="FILE",
        help="also write the rows here (docs/benchmarks/http.json is always written)",
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="skip the py-spy profile of the reserve case when a target is missed",
    )
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.connections < WRK_THREADS:
        parser.error(f"--seconds must be >= 1 and --connections >= {WRK_THREADS}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from loadtests.bench_core import run_loop
    from reservation.embedded import EmbeddedMongo

    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-http-") as temp:
        workdir = Path(temp)
        uri = os.environ.get("MONGODB_URI")
        embedded = None if uri else EmbeddedMongo(workdir / "mongo")
        try:
            if embedded is not None:
                uri = embedded.start()
            assert uri is not None
            pid = embedded.process.pid if embedded and embedded.process else None
            return run_loop(bench(args, uri, pid, workdir))
        finally:
            if embedded is not None:
                embedded.stop()


if __name__ == "__main__":
    sys.exit(main())
