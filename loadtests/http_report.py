"""The HTTP benchmark's report: the tables, the targets, the counts, the profile and how it
was measured, on the console and in docs/benchmarks/http.md, http.png and http.json."""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from loadtests.http_cases import CROWD, LISTED_SKUS, RESERVE_BODY, SKU, SOLD_OUT_SKU, STOCK
from loadtests.http_measure import WARMUP_SECONDS, Row, Run
from loadtests.http_profile import CaseProfile, profile_lines
from loadtests.http_tally import Tally
from loadtests.http_targets import targets
from loadtests.reporting import fmt, report_header, write_report
from loadtests.wrk_driver import WRK_THREADS, WRK_TIMEOUT
from reservation.server.gctuning import GC_YOUNG_THRESHOLD


def table_lines(rows: Sequence[Row]) -> list[str]:
    header = ["case", "connections", "requests/s", "p50 ms", "p99 ms", "ratio to floor"]
    header += ["requests", "non-2xx", "socket errors", "Redis commands / request"]
    header += ["Redis connections: server (all clients)"]
    header += ["CPU server / wrk / redis / mongo / machine"]
    body = [
        [
            row.case,
            f"{row.connections:,}",
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
            fmt(row.redis_commands_per_request, 3),
            f"{row.server_redis_connections} ({row.connected_clients})",
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


def markdown(
    rows: Sequence[Row],
    run: Run,
    info: dict[str, str],
    command: str,
    found: Sequence[CaseProfile],
) -> str:
    args = run.args
    lines = [
        *report_header(
            "HTTP benchmark: the reservation API under wrk",
            "loadtests/bench_http.py",
            command,
            info,
        ),
        f"## Results ({args.connections} connections unless said, {WRK_THREADS} wrk threads,"
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
        " `reservation_http_request_seconds_count` by status, for every worker: prometheus"
        "_client's multiprocess mode) and the SKU's `reserved` counter (GET /v1/products/{sku})"
        " moves once per hold."
        " A reserve is consistent when the server's 201s equal the counter's move and wrk saw"
        " at most as many fewer as it had connections (requests in flight when wrk closed its"
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
    """The mean latency Little's law gives for each case, next to the p99s."""
    means = ", ".join(
        f"{row.case} {1000 * row.connections / row.requests_per_second:,.1f} ms"
        for row in rows
        if row.requests_per_second
    )
    return [
        "With every connection always busy, the mean latency is connections / throughput"
        f" (Little's law): {means}. The p99 target is relative: the floor, answering the same"
        f" {connections} connections in the same run, sets what the machine allows."
    ]


def method_items(run: Run) -> list[str]:
    """The items of "How it is measured": the load, the machine, the cases, the floor, the
    stores and the clean-up."""
    return [*_load_items(run), *_case_items(), *_floor_items(), *_store_items()]


def _load_items(run: Run) -> list[str]:
    """How the load is made and counted, and what the machine shares between the processes."""
    args = run.args
    tool = (
        f"`wrk -t{WRK_THREADS} -c{args.connections} -d{args.seconds}s --timeout {WRK_TIMEOUT}"
        " --latency` with a Lua"
        " script (method, JSON body, Content-Type, and a done() hook printing wrk's own summary"
        " figures: requests, duration, `Non-2xx or 3xx responses`, socket errors, and the 50th"
        " and 99th percentile of the latency histogram `--latency` prints)"
        if run.driver.use_wrk
        else "an httpx asyncio client (wrk was not installed): it is slower than the server,"
        " so these figures measure the client more than the server"
    )
    return [
        f"Load: {tool}; requests/s = requests / duration. Each case gets a {WARMUP_SECONDS} s"
        " warm-up with the same load first, not counted. Every case runs"
        f" {run.args.rounds} time(s), the rounds one after another (all cases, then all"
        " again), and its best window (requests/s, with that window's latency and CPU) is the"
        " row: the machine's speed drifts over minutes, and a ratio should compare cases at"
        " their best, not one that ran in a slow minute. The correctness table counts every"
        " window.",
        "**The machine has 2 cores (nproc above), and wrk, the server, Redis and MongoDB share"
        " them** with whatever else runs on it. The CPU column is percent of one core over the"
        " window: /proc for the server's processes and nx-27017, getrusage for wrk, Redis' INFO"
        " cpu (which also counts other clients of that Redis), and /proc/stat for the whole"
        " machine (at most 200 %; what it has beyond the other four is everything else,"
        " including the kernel's loopback networking). One worker tops out at 100 %; two"
        " workers get what wrk, Redis and the rest leave of the second core, not a free core"
        " each. Absolute figures are lower than on a dedicated server.",
    ]


def _case_items() -> list[str]:
    """The servers, their products and each case's request."""
    return [
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
        f"reserve_{CROWD}_connections: the reserve case with wrk's -c{CROWD} (the bench and"
        " the servers raise their limit of open files). Its checks: throughput against reserve"
        " at the usual connections, no answer but 201 and no socket error, and the Redis"
        " connections the server's processes held, sampled every 0.5 s during the window"
        " (psutil; the pool is RESERVATION_REDIS_POOL_SIZE), beside Redis' `connected_clients`"
        " (every client of that Redis) in parentheses.",
        "Redis commands / request: the move of Redis' INFO `total_commands_processed` over the"
        " window, per request wrk counted. Redis counts the calls a script makes as commands"
        " too (a reserve is one FCALL and the calls inside it), and the commands of any other"
        " client of that Redis: on a shared Redis the figure is an upper bound.",
    ]


def _floor_items() -> list[str]:
    """The floor app, and its POST twin, that every case is compared against."""
    return [
        "floor: `loadtests.floor:floor_app`, a bare Starlette app with one route doing one"
        " Redis GET (redis.asyncio, a plain pool of up to 1024 connections, redis-py's"
        " connections as the service's) and"
        " answering a small JSONResponse; no middleware, no body, no validation; the same"
        " garbage-collector settings as the service after start-up (gc.freeze, young"
        f" generation threshold {GC_YOUNG_THRESHOLD:,}, reservation.server.gctuning); served by"
        " `python -m loadtests.floor`, which runs uvicorn exactly as `reservation serve` does:"
        " uvloop and the service's HTTP protocol (reservation.server.protocol.ClientProtocol:"
        " httptools with the client bounds, an answer's head and body in one write), so the"
        " floor and the service differ only in the code a request runs (with uvicorn's stock"
        " protocol the floor would pay a second write per answer that the service does not)."
        " ratio_to_floor = requests/s of the case / requests/s of the floor.",
        "floor_post: the same floor app and route answering the request a reserve gets: a POST"
        " of the reserve's JSON body, which it reads whole (`request.body()`) before the same"
        " GET. Receiving a body costs the server its own share of a request (httptools' body"
        " callback, the body message, reading it); the GET floor pays none of it. The targets"
        " are checked against the floor, as issue 13 set them, and also against floor_post,"
        " beside them, to show what the app's own code costs.",
    ]


def _store_items() -> list[str]:
    """The two-worker case, MongoDB, and what is cleaned up after the run."""
    mongo = (
        "MONGODB_URI."
        if "MONGODB_URI" in os.environ
        else "nx-27017 (MongoDB wire protocol over SQLite) in a temporary directory"
        " (reservation.stores.embedded.EmbeddedMongo)."
    )
    return [
        "reserve_2_workers: the reserve case against `reservation serve --workers 2` (uvicorn's"
        " supervisor and 2 worker processes, one listening socket).",
        f"MongoDB: {mongo} Only start-up and the PUTs touch it; no case reads it.",
        "After the run every server is stopped (SIGTERM, then SIGKILL of anything left in its"
        " session), the Redis keys of the run prefix are deleted (SCAN + UNLINK) and the MongoDB"
        " database is dropped.",
    ]


def chart(rows: Sequence[Row], connections: int, path: Path) -> None:
    figure = Figure(figsize=(8, 4.5))
    axes = figure.subplots()
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


def machine_notes(rows: Sequence[Row]) -> list[str]:
    """Windows in which something besides the benchmark took CPU (other work, the hypervisor)."""
    notes = []
    stolen = [f"{row.case} {row.cpu.steal:.0f}%" for row in rows if row.cpu.steal >= 2]
    if stolen:
        notes.append(f"CPU stolen by the hypervisor (percent of one core): {', '.join(stolen)}")
    busy = [f"{row.case} {row.cpu.others:.0f}%" for row in rows if row.cpu.others >= 25]
    if busy:
        notes.append(
            "CPU used beyond the server, wrk, Redis and nx-27017 (other work on the machine, and"
            f" the kernel's interrupt time), in percent of one core: {', '.join(busy)}; those"
            " windows had less CPU for the benchmark."
        )
    return notes


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


def report(
    rows: Sequence[Row], run: Run, info: dict[str, str], found: Sequence[CaseProfile]
) -> None:
    print("\n".join(table_lines(rows)))
    print()
    print("\n".join(target_lines(rows, run.args.connections)))
    print()
    for tally in run.tallies:
        print(f"{tally.case}: {tally.text()}")
    if found:
        print("\n".join(profile_lines(found)))
    for note in run.notes:
        print(f"note: {note}")
    command = ("python -m loadtests.bench_http " + shlex.join(sys.argv[1:])).strip()
    write_report(
        "http",
        markdown(rows, run, info, command, found),
        lambda path: chart(rows, run.args.connections, path),
        [row.as_json() for row in rows],
        run.args.json,
    )
