"""The metrics directory the workers of one `reservation serve --workers N` share.

Each worker writes its counters, histograms and gauges to files of its own there
(prometheus_client's multiprocess mode, reservation/metrics.py), so a scrape answered by any
worker counts them all. serve makes the directory fresh at each start (nothing from an earlier
run is counted), forgets the live gauges of a worker that exited (its counters stay counted:
what it did was done), and removes the directory when it stops. One worker writes no files.

prometheus_client is imported only where it is used: it chooses how values are kept when first
imported, from the environment this module sets.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# prometheus_client's variable (reservation.metrics.MULTIPROC_DIR, not imported: see above).
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def shared_metrics(workers: int) -> Iterator[str | None]:
    """A fresh directory named in the environment the workers inherit, removed on the way out;
    none for one worker (a value the environment had is dropped: serve owns the variable)."""
    os.environ.pop(MULTIPROC_DIR, None)
    if workers == 1:
        yield None
        return
    path = tempfile.mkdtemp(prefix="reservation-metrics-")
    os.environ[MULTIPROC_DIR] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_DIR, None)
        shutil.rmtree(path, ignore_errors=True)


class ExitedWorkers:
    """Notes the workers' process ids at each look; those gone since the last are forgotten."""

    def __init__(self) -> None:
        self.known: set[int] = set()

    def look(self, pids: set[int]) -> set[int]:
        gone = self.known - pids
        self.known = set(pids)
        path = os.environ.get(MULTIPROC_DIR)
        if gone and path:
            from prometheus_client import multiprocess

            for pid in gone:
                multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
        return gone
