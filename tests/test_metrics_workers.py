"""One scrape of `reservation serve --workers 2` counts every worker (reservation/metrics.py,
reservation/server/worker_metrics.py): a real serve subprocess, requests on fresh connections
shared out between its workers by the kernel, /metrics read through whichever worker answers.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from reservation.server.worker_metrics import MULTIPROC_DIR, ExitedWorkers, shared_metrics
from tests.test_cli import READY, TEE, Serving, Stores, serving, stores, terminate

__all__ = ["stores"]  # the fixture, shared with the command line's tests

COUNT = "reservation_http_request_seconds_count"
# Generous guards against a server that hangs, never measures of speed.
DEADLINE_SECONDS = 120.0


def gauge(server: Serving, name: str) -> float:
    answer = httpx.get(f"{server.url}/metrics")
    assert answer.status_code == 200
    families = text_string_to_metric_families(answer.text)
    return sum(s.value for f in families for s in f.samples if s.name == name)


def healthz_answers(families: object) -> float:
    """The /healthz requests counted in `families` (prometheus_client metric families)."""
    return sum(
        sample.value
        for family in families  # type: ignore[attr-defined]
        for sample in family.samples
        if sample.name == COUNT and sample.labels.get("route") == "/healthz"
    )


def scraped(server: Serving) -> float:
    answer = httpx.get(f"{server.url}/metrics")
    assert answer.status_code == 200
    return healthz_answers(text_string_to_metric_families(answer.text))


def per_worker(shared: Path) -> dict[int, float]:
    """The /healthz requests each worker counted, read from its own histogram file."""
    counts = {}
    for path in shared.glob("histogram_*.db"):
        pid = int(path.stem.removeprefix("histogram_"))
        merged = MultiProcessCollector.merge([str(path)], accumulate=True)  # type: ignore[no-untyped-call]
        counts[pid] = healthz_answers(merged)
    return counts


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"still not {what}"
        time.sleep(0.05)


def answered(counts: dict[int, float]) -> set[int]:
    return {pid for pid, count in counts.items() if count > 0}


def requests_until(
    server: Serving, shared: Path, done: Callable[[set[int]], bool], made: int = 0
) -> int:
    """Requests on fresh connections until `done(the workers that answered some)`; the number
    of requests made, `made` included."""
    while not done(answered(per_worker(shared))):
        assert made < 5000, f"the kernel gave one worker every request: {per_worker(shared)}"
        for _ in range(10):
            assert httpx.get(f"{server.url}/healthz").status_code == 200
            made += 1
    return made


def test_one_scrape_counts_the_requests_every_worker_answered(
    tmp_path: Path, stores: Stores
) -> None:
    temp = tmp_path / "tmp"  # where serve makes its metrics directory (TMPDIR)
    temp.mkdir()
    with serving(tmp_path, "--workers", "2", TMPDIR=str(temp), **stores.env) as server:
        server.until(READY)
        (shared,) = temp.iterdir()  # fresh at this start: the one directory there
        assert shared.name.startswith("reservation-metrics-")
        made = requests_until(server, shared, lambda pids: len(pids) == 2)
        # A worker counts a request once it has answered it: wait for the last to be counted.
        wait_for(lambda: sum(per_worker(shared).values()) == made, f"{made} counted")
        # Whichever worker answers the scrape counts them all (scrapes are not /healthz).
        for _ in range(20):
            assert scraped(server) == made
        assert terminate(server) == 0
    assert list(temp.iterdir()) == []  # removed when serve stopped


def test_a_worker_that_died_leaves_its_counts_and_takes_its_live_gauges(
    tmp_path: Path, stores: Stores
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    with serving(tmp_path, "--workers", "2", TMPDIR=str(temp), **stores.env) as server:
        server.until(READY)
        (shared,) = temp.iterdir()
        made = requests_until(server, shared, lambda pids: len(pids) == 2)
        wait_for(lambda: sum(per_worker(shared).values()) == made, f"{made} counted")
        workers = answered(per_worker(shared))
        assert workers <= {child.pid for child in psutil.Process(server.process.pid).children()}
        dead = min(workers)
        assert (shared / f"gauge_livesum_{dead}.db").exists()  # bodies held, streams open

        os.kill(dead, signal.SIGKILL)
        # serve starts another worker and forgets the dead one's live gauges.
        wait_for(lambda: not (shared / f"gauge_livesum_{dead}.db").exists(), "forgotten")
        wait_for(lambda: len(per_worker(shared)) == 3, "replaced")
        # What the dead worker answered stays counted, with what the others answer now.
        made = requests_until(server, shared, lambda pids: len(pids - workers) == 1, made)
        wait_for(lambda: sum(per_worker(shared).values()) == made, f"{made} counted")
        assert per_worker(shared)[dead] > 0
        for _ in range(20):
            assert scraped(server) == made
        assert terminate(server) == 0
    assert list(temp.iterdir()) == []


async def test_a_stream_one_worker_holds_open_shows_in_every_scrape(
    tmp_path: Path, stores: Stores
) -> None:
    await stores.catalog.put("tee", TEE)
    temp = tmp_path / "tmp"
    temp.mkdir()
    streams = "reservation_event_streams"
    with serving(tmp_path, "--workers", "2", TMPDIR=str(temp), **stores.env) as server:
        server.until(READY)
        with httpx.stream("GET", f"{server.url}/v1/products/tee/events") as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("event:")) == "event: stock"
            # Its worker copies the count to its file (at once when it answers the scrape,
            # else within a second): then any worker's scrape counts it, the other's too.
            wait_for(lambda: gauge(server, streams) == 1, "one stream open")
            for _ in range(20):  # fresh connections, shared out between the workers
                assert gauge(server, streams) == 1
        wait_for(lambda: gauge(server, streams) == 0, "the stream closed")
        assert terminate(server) == 0
    assert list(temp.iterdir()) == []


def test_serve_owns_the_directory_fresh_for_several_workers_none_for_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv(MULTIPROC_DIR, "/somewhere/an/operator/set")
    with shared_metrics(1) as path:
        assert path is None
        assert MULTIPROC_DIR not in os.environ  # one worker: nothing written to disk
    monkeypatch.setenv(MULTIPROC_DIR, "/somewhere/an/operator/set")
    with shared_metrics(3) as path:
        assert path is not None
        assert os.environ[MULTIPROC_DIR] == path
        assert Path(path).parent == tmp_path
        assert list(Path(path).iterdir()) == []  # fresh
        (Path(path) / "counter_1.db").write_bytes(b"")
    assert list(tmp_path.iterdir()) == []  # removed, what the workers wrote with it
    assert MULTIPROC_DIR not in os.environ


def test_workers_gone_since_the_last_look_lose_their_live_gauges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_DIR, str(tmp_path))
    names = ("gauge_livesum_{}.db", "gauge_liveall_{}.db", "gauge_sum_{}.db", "counter_{}.db")
    for pid in (11, 12, 13):
        for name in names:
            (tmp_path / name.format(pid)).write_bytes(b"")
    exited = ExitedWorkers()
    assert exited.look({11, 12}) == set()
    assert exited.look({12, 13}) == {11}  # 11 replaced by 13
    left = {path.name for path in tmp_path.iterdir()}
    assert "gauge_livesum_11.db" not in left
    assert "gauge_liveall_11.db" not in left
    assert {"gauge_sum_11.db", "counter_11.db", "gauge_livesum_12.db"} <= left
    assert exited.look({12, 13}) == set()
