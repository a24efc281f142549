"""The package as users get it: the built wheel, the console script, python -m."""

from __future__ import annotations

import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
from redis import Redis

from reservation.keys import KeySpace
from reservation.scripts import SCRIPT_NAMES
from tests.conftest import REDIS_URL

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_carries_the_lua_scripts(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for script in (*SCRIPT_NAMES, "_pool"):
        assert f"reservation/lua/{script}.lua" in names
    assert "reservation/py.typed" in names


def reservation_cli(*args: str, env_prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reservation", *args],
        capture_output=True,
        text=True,
        check=False,
        env={"REDIS_URL": REDIS_URL, "RESERVATION_KEY_PREFIX": env_prefix, "PATH": ""},
        cwd=ROOT,
    )


def test_cli_sets_and_shows_stock() -> None:
    prefix = f"cli-{uuid.uuid4().hex[:8]}"
    try:
        done = reservation_cli("set-stock", "tee", "7", "--pool", "drop", env_prefix=prefix)
        assert done.returncode == 0, done.stderr
        assert "tee: total=7 reserved=0 sold=0 available=7" in done.stdout
        shown = reservation_cli("stock", "--pool", "drop", env_prefix=prefix)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[1].split() == ["tee", "7", "0", "0", "7"]
        bad = reservation_cli("set-stock", "te{e}", "7", env_prefix=prefix)
        assert bad.returncode == 2
        assert "sku must be 1 to 64 characters" in bad.stderr
        assert "Traceback" not in bad.stderr
    finally:
        client = Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=KeySpace(prefix).pattern()):
            client.delete(key)
        client.close()


def test_cli_version_and_help() -> None:
    done = reservation_cli("--help", env_prefix="unused")
    assert done.returncode == 0
    assert "set-stock" in done.stdout


def test_stripe_sim_command_serves_the_api() -> None:
    import time

    import httpx

    from tests.servers import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "reservation", "stripe-sim", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/v1/checkout/sessions", auth=("sk_test_x", "")
                )
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert answer.status_code == 200
        assert answer.json()["object"] == "list"
    finally:
        process.terminate()
        process.wait(timeout=10)
