"""Locust's part of a flash sale: its run against the stack (loadtests/locustfile.py,
headless), a py-spy profile of a service worker meanwhile, and its rows per request name."""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from loadtests.cpu import cpu_seconds, machine_cpu_seconds, process_tree
from loadtests.pyspy import py_spy, record, summarize
from loadtests.sale_stack import CLUSTER_MASTERS, Stack, cluster_pools

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def run_locust(stack: Stack, args: argparse.Namespace, report_dir: Path) -> int:
    """Run the sale's Locust against the stack to its end; Locust's exit code."""
    argv = locust_argv(stack, args, report_dir)
    shown = [part.replace(stack.admin_token, "…") for part in argv]
    print("locust:", shlex.join(shown[2:]), flush=True)
    # Every new buyer opens a connection; gevent's default resolver hands each lookup of the
    # (literal) loopback address to a thread and back. Resolved in the loop, it costs nothing.
    # On a machine it shares with the service, Locust yields the CPU to it (--locust-nice):
    # the sale's processes wait less behind the load generator in the run queue. Locust's own
    # timings still include any wait of its own to be scheduled.
    niced = ["nice", "-n", str(args.locust_nice)] if args.locust_nice else []
    locust = stack.start("locust", [*niced, *argv], GEVENT_RESOLVER="block")
    # "run": this process and all it started (the stores, simulator, service, Locust); what
    # the machine spent beyond it is other load on the machine.
    roots = {"locust": locust.pid, "service": stack.processes[1].pid, "run": os.getpid()}
    watch = CpuWatch(roots)
    watch.start()
    if args.profile_seconds:
        stack.profile = profile_service(stack, args.profile_seconds, args.spike_seconds + 5)
    code = locust.wait()
    watch.stop()
    stack.cpu = watch.shares()
    return code


class CpuWatch(threading.Thread):
    """CPU of process trees (Locust, the service) and of the machine, sampled every second
    while the sale runs: each one's mean and busiest second, in percent of one core."""

    def __init__(self, roots: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.done = threading.Event()

    def sample(self) -> None:
        found = {name: cpu_seconds(process_tree(pid)) for name, pid in self.roots.items()}
        found["machine"] = machine_cpu_seconds()[0]
        self.samples.append((time.monotonic(), found))

    def run(self) -> None:
        self.sample()
        while not self.done.wait(1.0):
            self.sample()

    def stop(self) -> None:
        self.done.set()
        self.join()

    def shares(self) -> dict[str, float]:
        """`<name> mean %` and `<name> peak %` (of one core) over the samples. A second in
        which a process of a tree exited reads as a drop of that tree's total: such a second
        counts as 0, not as negative, so the mean undercounts it by at most that second."""
        found: dict[str, float] = {}
        if len(self.samples) < 2:
            return found
        pairs = list(zip(self.samples, self.samples[1:], strict=False))
        span = self.samples[-1][0] - self.samples[0][0]
        for name in self.samples[0][1]:
            spent = [max(b[name] - a[name], 0.0) for (_, a), (_, b) in pairs]
            rates = [
                100 * s / (tb - ta) for s, ((ta, _), (tb, _)) in zip(spent, pairs, strict=True)
            ]
            found[f"{name} mean %"] = 100 * sum(spent) / span
            found[f"{name} peak %"] = max(rates)
        if "run mean %" in found:
            found["others mean %"] = found["machine mean %"] - found["run mean %"]
        return found
        pairs = list(zip(self.samples, self.samples[1:], strict=False))
        for name in self.samples[0][1]:
            rates = [100 * (b[name] - a[name]) / (tb - ta) for (ta, a), (tb, b) in pairs]
            (t0, first), (t1, last) = self.samples[0], self.samples[-1]
            found[f"{name} mean %"] = 100 * (last[name] - first[name]) / (t1 - t0)
            found[f"{name} peak %"] = max(rates)
        if "run mean %" in found:
            found["others mean %"] = found["machine mean %"] - found["run mean %"]
        return found


def locust_argv(stack: Stack, args: argparse.Namespace, report_dir: Path) -> list[str]:
    """The Locust command of the sale: headless, its CSVs and HTML in `report_dir`."""
    argv = [
        *(sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"),
        *("--host", stack.service_url, "--users", str(args.users)),
        *("--spawn-rate", str(max(1, args.users // 5))),
        *("--run-time", f"{args.seconds}s", "--stop-timeout", "30"),
        *("--csv", str(report_dir / "flash-sale"), "--csv-full-history"),
        *("--html", str(report_dir / "flash-sale.html"), "--only-summary"),
        *("--sim-url", stack.sim_url),
        f"--admin-token={stack.admin_token}",  # a token may start with "-"
        *("--stock", str(args.stock), "--hot-stock", str(args.stock)),
        *("--skus", str(args.skus), "--buyers", str(args.buyers)),
        *("--spike-seconds", str(args.spike_seconds)),
        "--leave-seconds",
        str(args.spike_seconds if args.leave_seconds is None else args.leave_seconds),
        "--patience",
        str(args.seconds if args.patience is None else args.patience),
        *("--tags", *args.tags),
    ]
    if getattr(args, "waiting_room", False):
        argv += [
            *("--admit-per-second", str(args.admit_per_second)),
            *("--max-active", str(args.max_active)),
            *("--admission-seconds", str(args.admission_seconds)),
            *("--start-in", str(args.start_in)),
        ]
    if args.locust_processes > 1:
        argv += ["--processes", str(args.locust_processes)]
    if args.redis_cluster:
        hot_pool, *others = cluster_pools(CLUSTER_MASTERS)
        argv += ["--hot-pool", hot_pool, "--pools", ",".join(others)]
    return argv


def profile_service(stack: Stack, seconds: float, delay: float) -> list[tuple[str, float]]:
    """py-spy on one service worker for `seconds`, `delay` seconds into the sale: the share
    of samples per owner (uvicorn, starlette, redis-py, our code, syscalls ...)."""
    time.sleep(delay)
    service = stack.processes[1]
    worker = process_tree(service.pid)[-1]  # the last worker (the supervisor without workers)
    path = stack.workdir / "service-profile.txt"
    failed = record(py_spy() or "py-spy", worker, int(seconds), 100, path)
    if failed is not None:
        return [("py-spy failed: " + failed[-200:], 0.0)]
    profile = summarize("service", path.read_text())
    return [(label, 100.0 * n / profile.samples) for label, n in profile.owners]


@dataclass(frozen=True, slots=True)
class NameRow:
    """Locust's figures for one request name (or "Aggregated") over the whole sale."""

    name: str
    method: str
    requests: int
    failures: int
    per_second: float
    p50: float
    p99: float


def locust_rows(report_dir: Path) -> list[NameRow]:
    """The rows of Locust's flash-sale_stats.csv (none when Locust wrote none)."""
    path = report_dir / "flash-sale_stats.csv"
    if not path.exists():
        return []
    with path.open() as handle:
        return [
            NameRow(
                row["Name"],
                row["Type"],
                int(row["Request Count"]),
                int(row["Failure Count"]),
                float(row["Requests/s"]),
                float(row["50%"] or 0),
                float(row["99%"] or 0),
            )
            for row in csv.DictReader(handle)
        ]
