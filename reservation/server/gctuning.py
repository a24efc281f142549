"""The garbage-collector settings a server applies once it has started.

Its long-lived objects never need collecting: they are frozen out of the collector's way, and
the young generation is collected less often (the hot paths make short-lived objects in
bursts, and each collection walks them all). Kept apart from the app so that a benchmark's
bare server (loadtests/floor.py) can apply the same settings without importing the service.
"""

from __future__ import annotations

import gc

GC_YOUNG_THRESHOLD = 20_000


def tune_after_startup() -> None:
    """Collect, freeze what survived, and raise the young generation's threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
