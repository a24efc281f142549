"""The package as users get it: the built wheel, the console script, python -m."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from harness.servers import free_port, stop_process, wait_until
from loadtests.cpu import process_tree
from reservation.lua.library import SCRIPT_NAMES, STANDALONE_NAMES
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
    for script in (*SCRIPT_NAMES, *STANDALONE_NAMES, "_pool"):
        assert f"reservation/lua/{script}.lua" in names
    assert "reservation/py.typed" in names
    # The storefront and the operations page (reservation/api/pages.py serves what ships).
    web = ROOT / "reservation" / "web"
    assert {f"reservation/web/{page.name}" for page in web.iterdir()} <= names


def reservation_cli(*args: str, env_prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reservation", *args],
        capture_output=True,
        text=True,
        check=False,
        env={"REDIS_URL": REDIS_URL, "RESERVATION_KEY_PREFIX": env_prefix, "PATH": ""},
        cwd=ROOT,
    )


def test_cli_version_and_help() -> None:
    done = reservation_cli("--help", env_prefix="unused")
    assert done.returncode == 0
    assert "set-stock" in done.stdout


def test_stripe_sim_command_serves_the_api() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "reservation", "stripe-sim", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    answers: list[httpx.Response] = []

    def answered() -> bool:
        url = f"http://127.0.0.1:{port}/v1/checkout/sessions"
        answers.append(httpx.get(url, auth=("sk_test_x", "")))
        return True

    try:
        wait_until(answered, "stripe-sim", 20, errors=(httpx.HTTPError,), exited=process.poll)
        assert answers[-1].status_code == 200
        assert answers[-1].json()["object"] == "list"
    finally:
        stop_process(process)


def test_the_flash_sale_leaves_no_process_behind_when_interrupted(tmp_path: Path) -> None:
    rehearsal = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtests.run_flash_sale",
            "--users",
            "5",
            "--seconds",
            "60",
            "--stock",
            "5",
            "--skus",
            "1",
            "--workers",
            "1",
            "--report-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert rehearsal.stdout is not None
        for line in rehearsal.stdout:
            if line.startswith("locust:"):
                break
        time.sleep(2)  # Locust, the service, the simulator and the stores all run now
        children = process_tree(rehearsal.pid)[1:]  # every process below the rehearsal
        assert len(children) >= 4
        rehearsal.send_signal(signal.SIGINT)
        output, _ = rehearsal.communicate(timeout=60)
        assert rehearsal.returncode == 130, output
        assert "every process of the rehearsal was stopped" in output
        assert not [pid for pid in children if _alive(pid)]
    finally:
        if rehearsal.poll() is None:
            os.killpg(rehearsal.pid, signal.SIGKILL)
            rehearsal.wait()


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()
