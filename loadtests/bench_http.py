"""HTTP benchmark: `reservation serve` under wrk, against a bare Starlette + Redis floor.

Run from the repository root, with Redis up (REDIS_URL, default redis://127.0.0.1:6379/0)
and wrk installed (Debian: `apt-get install wrk`); MongoDB is MONGODB_URI when set, else an
nx-27017 in a temporary directory:

    .venv/bin/python -m loadtests.bench_http
    .venv/bin/python -m loadtests.bench_http --seconds 5 --connections 64 --json /tmp/http.json

Cases, each a warm-up of 2 s and then a window of --seconds (default 10) under
`wrk -t2 -c64 --timeout 10s --latency`, against servers started as subprocesses on loopback
ports (--cases picks some of them):

- reserve: POST /v1/reservations of 1 unit of a SKU with 10^11 units (201);
- reserve_3000_connections: the same under `wrk -c3000` (a crowd of connections; the Redis
  connections the server holds meanwhile are sampled and reported);
- reserve_sold_out: the same POST on a SKU with stock 0 (409 insufficient_stock, by design),
  answered from the sold-out memory (the Redis commands per request are reported);
- get_product: GET /v1/products/{sku} (one Redis script call: counters and catalog entry);
- list_products: GET /v1/products with 20 SKUs (one Redis script call for their pool);
- floor: `loadtests/floor.py`, one route doing one Redis GET and answering a small JSON,
  served by `python -m loadtests.floor` exactly as `reservation serve` runs the API (uvloop,
  the service's httptools protocol, 1 worker, no access log);
- floor_post: the same floor route receiving the reserve's POST and body (read whole before the
  GET): the floor of a request that carries a body, reported beside the targets;
- reserve_2_workers: reserve against `reservation serve --workers 2`.

After every window the server's own count of answers (/metrics, every worker) and the SKU's
`reserved` counter (GET /v1/products/{sku}) are compared with what wrk saw. When a target is
missed, the reserve case and the floor are profiled with py-spy (`--native`) while wrk drives
them, and the samples are summed by owner (uvicorn, starlette, redis-py, our code, syscalls,
the garbage collector ...).

The floor applies the service's garbage-collector settings after start-up (gc.freeze and a
young-generation threshold, reservation.server.gctuning), so the two differ only in the code a
request runs. The
profile needs py-spy (`pip install py-spy`; ptrace rights, e.g. root). Without wrk it falls
back to an httpx client (much slower than the server: it measures the client).

Writes docs/benchmarks/http.md, http.png and http.json (--json FILE for another path). Every
Redis key lives under a prefix of this run (deleted by SCAN at the end), the MongoDB database
has a name of this run (dropped at the end), and every process it starts is stopped.

This module is the command line; the pieces are modules of their own: floor (the floor app),
http_cases, http_servers, wrk_driver and httpx_driver (the load generators), cpu, http_tally
(counts and consistency), http_measure, http_targets, http_profile with pyspy (py-spy
attribution), http_report; and machine, cleanup, reporting, shared with bench_core.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from loadtests.cleanup import drop_database, redis_for_run
from loadtests.floor import floor_key
from loadtests.http_cases import CASES
from loadtests.http_measure import Driver, Run, run_cases
from loadtests.http_profile import CaseProfile, profiles
from loadtests.http_report import machine_notes, report, server_log_notes
from loadtests.http_targets import missed
from loadtests.http_tokens import verification_costs
from loadtests.machine import DEFAULT_REDIS_URL, machine_info, run_loop
from loadtests.reporting import add_json_option
from loadtests.wrk_driver import WRK_THREADS, wrk_version
from reservation.server.open_files import raise_open_files_limit
from reservation.stores.embedded import EmbeddedMongo

ROOT = Path(__file__).resolve().parent.parent
CASE_NAMES = [case.name for case in CASES]
DEFAULT_SECONDS = 10
DEFAULT_CONNECTIONS = 64
# The machine's speed drifts over minutes (a shared VM): every case is measured this many
# times, rounds one after another, and its best window kept, so a ratio compares cases at
# their best rather than whichever ran in a slow minute.
DEFAULT_ROUNDS = 2


def tool_versions(use_wrk: bool) -> dict[str, str]:
    packages = ("uvicorn", "uvloop", "httptools", "starlette", "msgspec")
    info = {"server stack": ", ".join(f"{name} {version(name)}" for name in packages)}
    if use_wrk:
        info["load generator"] = wrk_version()
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


def token_note() -> str:
    """What one customer token's verification costs in this process, by algorithm."""
    costs = verification_costs()
    shown = ", ".join(f"{algorithm} {usec:.1f} µs" for algorithm, usec in costs.items())
    return (
        f"one customer token verified (PyJWT jwt.decode: signature, exp, aud), in this process: "
        f"{shown} (RS256/ES256: a public key or a JWKS; the server's share is in the token rows)"
    )


async def bench(
    args: argparse.Namespace, mongodb_uri: str, mongo_pid: int | None, workdir: Path
) -> int:
    run_id = secrets.token_hex(4)
    prefix = f"bench-http-{run_id}"
    use_wrk = shutil.which("wrk") is not None
    found: list[CaseProfile] = []
    async with redis_for_run(args.redis_url, prefix) as client:
        run = Run(
            args=args,
            driver=Driver(args.connections, workdir, use_wrk),
            redis=client,
            prefix=prefix,
            database=f"bench_http_{run_id}",
            token=secrets.token_urlsafe(24),
            mongodb_uri=mongodb_uri,
            mongo_pid=mongo_pid,
            workdir=workdir,
        )
        if not use_wrk:
            run.notes.append("wrk is not installed: the httpx fallback measured these figures")
        try:
            info = {**await machine_info(client), **tool_versions(use_wrk)}
            await client.set(floor_key(run.prefix), "1")
            rows = await run_cases(run)
            if args.profile and missed(rows, args.connections):
                found = await profiles(run)
        finally:
            drop_database(mongodb_uri, run.database)
    run.notes += machine_notes(rows) + server_log_notes(run.logs) + [token_note()]
    report(rows, run, info, found)
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
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
    add_json_option(parser, "http")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument(
        "--cases",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=None,
        help="only these cases, comma-separated (default: all: " + ", ".join(CASE_NAMES) + ")",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help="run every case this many times, one round after another, and keep each case's"
        f" best window (default: {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="skip the py-spy profile of the reserve case when a target is missed",
    )
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.connections < WRK_THREADS or args.rounds < 1:
        parser.error(f"--seconds and --rounds must be >= 1 and --connections >= {WRK_THREADS}")
    unknown = set(args.cases or ()) - set(CASE_NAMES)
    if unknown:
        parser.error(f"no such case: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # wrk inherits this process's limit of open files: the crowd case needs thousands.
    raise_open_files_limit()
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
