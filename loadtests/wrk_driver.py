"""The HTTP benchmark's load generator: wrk, with a Lua script per case whose done() hook
prints wrk's own summary figures as one JSON line."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

from loadtests.http_cases import Case, Load
from loadtests.http_tokens import bench_tokens

WRK_THREADS = 2
# wrk's own default (2 s) counts a slower answer as a timeout and leaves it out of the
# latencies; a crowd of thousands of connections queues for longer than that.
WRK_TIMEOUT = "10s"
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


def wrk_script(case: Case) -> str:
    lines = [f'wrk.method = "{case.method}"']
    if case.body is not None:
        lines += [f"wrk.body = [[{case.body}]]", 'wrk.headers["Content-Type"] = "application/json"']
    if case.tokens:
        # Each request the next buyer's token. wrk's threads walk the list from points half a
        # list apart (setup() runs once per thread, in the main script), so no thread sends a
        # token another sent a moment ago: with more tokens than a process remembers, every
        # token case's request is verified anew.
        tokens = ",".join(f'"Bearer {token}"' for token in bench_tokens(case.tokens))
        lines += [
            f"tokens = {{{tokens}}}",
            "local threads = 0",
            "setup = function(thread)",
            f"  thread:set('next_token', threads * {max(case.tokens // WRK_THREADS, 1)})",
            "  threads = threads + 1",
            "end",
            "request = function()",
            "  next_token = next_token % #tokens + 1",
            '  wrk.headers["Authorization"] = tokens[next_token]',
            "  return wrk.format()",
            "end",
        ]
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
        "--timeout",
        WRK_TIMEOUT,
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


def wrk_version() -> str:
    """`wrk -v`'s first line, without the copyright."""
    first = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (first.stdout or first.stderr).split("Copyright")[0].strip()
