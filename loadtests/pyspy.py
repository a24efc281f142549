"""py-spy attribution of a server's time: `py-spy record --native --format raw` stacks, each
sample charged to the package that owns it (uvicorn, starlette, redis-py, our code, syscalls,
the garbage collector ...). Used by bench_http and run_flash_sale."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

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
SYSCALL_LABEL = "syscalls (socket write/read, epoll) via libc"
OTHER_LABEL = "other (CPython runtime, stdlib)"
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
MARKERS = (  # inclusive: samples with this function anywhere in the stack
    ("create_reservation", "the handler, create_reservation (all of it)"),
    ("Holds.reserve", "  Holds.reserve (redis-py FCALL, send + parse)"),
    ("read_json", "  read_json (body + msgspec decode)"),
    ("json_response", "  json_response (msgspec encode + Response)"),
    ("RequestResponseCycle.send", "uvicorn RequestResponseCycle.send (answer + socket write)"),
    ("data_received", "uvicorn data_received (httptools parse, new ASGI cycle)"),
    ("MetricWrapperBase", "prometheus_client metrics (labels / observe / inc)"),
    ("gc_collect", "garbage collector"),
)


@dataclass(frozen=True, slots=True)
class Profile:
    """One recording, summed: samples by owner, the hottest leaves, and MARKERS inclusive."""

    name: str
    samples: int
    owners: list[tuple[str, int]]
    leaves: list[tuple[str, int]]
    inclusive: list[tuple[str, int]]

    def grouped(self) -> dict[str, int]:
        """Owner samples summed into GROUPS (the rest: other)."""
        sums: Counter[str] = Counter()
        for label, count in self.owners:
            first = label.split()[0]
            group = next((name for name, firsts in GROUPS if first in firsts), "other")
            sums[group] += count
        return {name: sums[name] for name, _ in GROUPS} | {"other": sums["other"]}


def py_spy() -> str | None:
    """The py-spy of this virtualenv, else the one on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record_argv(binary: str, pid: int, seconds: int, rate: int, output: Path) -> list[str]:
    """py-spy record of one process: native frames, no line numbers, raw stacks to `output`."""
    return [
        *(binary, "record", "--pid", str(pid), "--native", "--nolineno"),
        *("--duration", str(seconds), "--rate", str(rate)),
        *("--format", "raw", "--output", str(output)),
    ]


def record(binary: str, pid: int, seconds: int, rate: int, output: Path) -> str | None:
    """Record `pid` for `seconds` (blocking); None when it worked, else the end of what
    py-spy said."""
    done = subprocess.run(
        record_argv(binary, pid, seconds, rate, output),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    if done.returncode != 0 or not output.exists():
        return done.stdout.decode(errors="replace")[-300:]
    return None


def split_frame(frame: str) -> tuple[str, str]:
    """'func (file)' -> (func, file)."""
    func, _, rest = frame.rpartition(" (")
    return (func, rest.rstrip(")")) if func else (frame, "")


def owner(frames: Sequence[str]) -> str:
    """The label a sample is charged to: GC, a socket syscall, or the first package from the
    leaf up."""
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
    return OTHER_LABEL


def stacks(raw: str) -> Iterator[tuple[list[str], int]]:
    """(frames root first, sample count) of each line of py-spy's raw format."""
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def summarize(name: str, raw: str) -> Profile:
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
        name,
        total,
        owners.most_common(),
        leaves.most_common(10),
        [(label, inclusive[label]) for _, label in MARKERS],
    )
