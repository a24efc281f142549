"""The servers the HTTP benchmark measures, each a subprocess in a session of its own on a
loopback port: `reservation serve` with 1 or 2 workers, and the floor under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.servers import free_port, stop_process, wait_for_http
from loadtests.floor import FLOOR_PATH

ROOT = Path(__file__).resolve().parent.parent
READY_SECONDS = 30.0
STOP_SECONDS = 10.0


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def server_command(kind: str) -> tuple[list[str], str]:
    """The command line of a kind of server ("app", "app2": 2 workers, "floor"), without its
    port, and the path that answers 200 once it is ready."""
    if kind == "floor":
        return [sys.executable, "-m", "loadtests.floor"], FLOOR_PATH
    workers = "2" if kind == "app2" else "1"
    return [sys.executable, "-m", "reservation", "serve", "--workers", workers], "/readyz"


def start_server(
    name: str, argv: Sequence[str], env: Mapping[str, str], workdir: Path, ready_path: str
) -> Server:
    """Start a server in a session of its own and wait until `ready_path` answers 200."""
    port = free_port()
    log = workdir / f"{name}-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*argv, "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    try:
        wait_for_http(server.url + ready_path, name, READY_SECONDS, exited=process.poll, log=log)
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: Server) -> None:
    """SIGTERM (uvicorn stops its workers), then SIGKILL whatever is left of its session."""
    stop_process(server.process, STOP_SECONDS, session=True)


@contextlib.asynccontextmanager
async def serving(kind: str, env: Mapping[str, str], workdir: Path) -> AsyncIterator[Server]:
    """One server of the benchmark, stopped when the block ends."""
    argv, ready = server_command(kind)
    server = await asyncio.to_thread(start_server, kind, argv, env, workdir, ready)
    try:
        yield server
    finally:
        await asyncio.to_thread(stop_server, server)
