"""The clock-skew drill: the service 4 minutes ahead and a second one 4 minutes behind, on the
same stores; holds end when Redis's clock says, read the same through both."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import redis

from harness.servers import free_port, wait_for_http
from loadtests.drills.target import Target, Timings

SKEW_SECONDS = 240
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def skewed(offset: str) -> dict[str, str]:
    """The environment that runs a process with its clock `offset` (e.g. "+4m") from the
    machine's (libfaketime; Debian's `faketime` package)."""
    return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def clock_skewed(target: Target) -> Timings:
    """The sale's service runs 4 minutes ahead; a second service on the same stores runs 4
    minutes behind. Holds made by either end when Redis's clock says, for both."""
    began = time.monotonic()
    if not LIBFAKETIME.exists():
        target.problems.append(f"{LIBFAKETIME} is missing: apt-get install faketime")
        return began, began, None
    port = free_port()
    behind = target.stack.start(
        "service-behind",
        [sys.executable, "-m", "reservation", "serve", "--port", str(port)],
        **skewed("-4m"),
    )
    behind_url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{behind_url}/readyz", "the service 4 minutes behind", 60, exited=behind.poll)
    client = redis.Redis.from_url(target.stores.redis.url)
    hold = float(target.stack.env["RESERVATION_HOLD_SECONDS"])
    try:
        urls = {"ahead": target.stack.service_url, "behind": behind_url}
        made: list[tuple[str, str, float]] = []  # (maker, reservation id, expiry by its answer)
        with httpx.Client(timeout=30) as http:
            for maker, url in urls.items():
                seconds, micros = client.time()
                redis_now = seconds + micros / 1e6
                answer = http.post(
                    f"{url}/v1/reservations", json={"items": [{"sku": "hot", "quantity": 1}]}
                )
                if answer.status_code != 201:
                    target.problems.append(f"a hold from the service {maker}: {answer.status_code}")
                    continue
                # uvicorn's Date header is the worker's clock: the skew is really there.
                skew = parsedate_to_datetime(answer.headers["date"]).timestamp() - time.time()
                if abs(abs(skew) - SKEW_SECONDS) > 5:
                    target.problems.append(f"the service {maker} is {skew:+.0f} s off, not 4 min")
                expires = datetime.fromisoformat(answer.json()["expires_at"]).timestamp()
                if abs(expires - redis_now - hold) > 2:
                    target.problems.append(
                        f"a hold made {maker} expires {expires - redis_now:.1f} s after Redis's"
                        f" now, not {hold:g} s"
                    )
                made.append((maker, answer.json()["id"], expires))
            _statuses(http, urls, made, "held", target.problems)
            last = max((expires for _, _, expires in made), default=0.0)
            while True:
                seconds, micros = client.time()
                if seconds + micros / 1e6 > last + 0.5:
                    break
                time.sleep(0.2)
            _statuses(http, urls, made, "expired", target.problems)
    finally:
        client.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(behind.pid, signal.SIGTERM)
        behind.wait(timeout=30)
    ended = time.monotonic()
    return began, ended, 0.0 if not target.problems else None


def _statuses(
    http: httpx.Client,
    urls: dict[str, str],
    made: Sequence[tuple[str, str, float]],
    wanted: str,
    problems: list[str],
) -> None:
    """Every hold in `made`, read through every service, has the status `wanted`."""
    for maker, reservation_id, _ in made:
        for reader, url in urls.items():
            status = http.get(f"{url}/v1/reservations/{reservation_id}").json().get("status")
            if status != wanted:
                problems.append(f"a hold made {maker}, read {reader}: {status}, not {wanted}")
