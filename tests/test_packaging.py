"""The package as users get it: the built wheel, the console script, python -m."""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from harness.servers import free_port, stop_process, wait_until
from loadtests.cpu import process_tree
from reservation import __version__
from reservation.cli import main
from reservation.env_variables import VARIABLES
from reservation.lua.library import SCRIPT_NAMES, STANDALONE_NAMES
from reservation.settings import Settings
from stripesim.cli import stripe_sim
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
    # PEP 639: the license file ships in the wheel, its expression in the metadata.
    dist_info = f"stripe_reservation-{__version__}.dist-info"
    assert f"{dist_info}/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert f"\nVersion: {__version__}\n" in metadata
    assert "\nLicense-Expression: MIT\n" in metadata
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


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def test_license_and_version_are_written_once() -> None:
    project = pyproject()["project"]
    assert project["license"] == "MIT"  # PEP 639: an SPDX expression, not the old table
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]
    assert "setuptools>=77" in pyproject()["build-system"]["requires"]  # PEP 639's floor
    # The version: reservation.__version__ alone; the metadata and the CLI read it.
    assert "version" not in project
    assert "version" in project["dynamic"]
    dynamic = pyproject()["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "reservation.__version__"}
    metadata = importlib.metadata.metadata("stripe-reservation")
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "MIT"
    assert reservation_cli("--version", env_prefix="unused").stdout.split()[-1] == __version__


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def image_command(service: dict[str, Any]) -> list[str]:
    """What a service of our image runs: its command, else the Dockerfile's CMD."""
    cmd = next(line for line in dockerfile() if line.startswith("CMD "))
    return list(service.get("command") or json.loads(cmd.removeprefix("CMD ")))


def test_compose_instances_run_with_settings_the_service_reads() -> None:
    services = compose()["services"]
    instances = {
        name: service
        for name, service in services.items()
        if service.get("build") == "." and image_command(service)[:2] == ["reservation", "serve"]
    }
    assert sorted(instances) == ["service-1", "service-2"]
    known = {variable.name for variable in VARIABLES}
    for name, service in instances.items():
        environment = {key: str(value) for key, value in service["environment"].items()}
        assert set(environment) <= known, f"{name}: {sorted(set(environment) - known)}"
        settings = Settings.from_env(environment)  # every value one the service takes
        assert settings.redis_url  # the real stores, no embedded one
        assert settings.mongodb_uri
        serve = main.commands["serve"]
        serve.make_context("serve", image_command(service)[2:])  # its options exist
        # The stores and the simulator it names are the compose file's.
        redis_url = urlsplit(environment["REDIS_URL"])
        assert services[str(redis_url.hostname)]["image"].startswith("redis:7")
        mongodb = urlsplit(environment["MONGODB_URI"])
        replica_set = option(services[str(mongodb.hostname)]["command"], "--replSet")
        assert f"replicaSet={replica_set}" in mongodb.query
        stripe = urlsplit(environment["STRIPE_API_BASE"])
        sim = services[str(stripe.hostname)]["command"]
        assert option(sim, "--port") == str(stripe.port)
        assert option(sim, "--webhook-secret") == environment["STRIPE_WEBHOOK_SECRET"]
    secrets = {s["environment"]["RESERVATION_SESSION_SECRET"] for s in instances.values()}
    assert len(secrets) == 1  # every instance verifies the others' sessions


def test_compose_proxy_spreads_over_the_instances_and_takes_the_webhooks() -> None:
    services = compose()["services"]
    proxy = services["proxy"]["command"]
    assert proxy[:2] == ["caddy", "reverse-proxy"]
    targets = [proxy[i + 1] for i, word in enumerate(proxy) if word == "--to"]
    assert targets == ["service-1:8000", "service-2:8000"]
    served = option(image_command(services["service-1"]), "--port")
    assert {target.split(":")[1] for target in targets} == {served}
    listen = option(proxy, "--from").lstrip(":")
    assert f"{listen}:{listen}" in services["proxy"]["ports"]
    sim = services["stripe-sim"]["command"]
    assert sim[:2] == ["reservation", "stripe-sim"]
    stripe_sim.make_context("stripe-sim", sim[2:])  # its options exist
    assert option(sim, "--webhook-url") == f"http://proxy:{listen}/v1/webhooks/stripe"
    public = services["service-1"]["environment"]["PUBLIC_URL"]
    assert urlsplit(public).port == int(listen)


def dockerfile() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_dockerfile_runs_the_service_alone_as_a_user() -> None:
    lines = dockerfile()
    stages = [line for line in lines if line.startswith("FROM ")]
    floor = pyproject()["project"]["requires-python"].removeprefix(">=")
    assert all(line.split()[1] == f"python:{floor}-slim" for line in stages)
    final = lines[lines.index(stages[-1]) :]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    installs = " ".join(line for line in final if "pip install" in line)
    assert "[" not in installs  # neither the dev nor the demo extras: the service alone
    packages = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {
        line.split()[1] for line in lines if line.startswith("COPY ") and "--from" not in line
    }
    assert {package.rstrip("*") for package in packages} <= copied
    known = {variable.name for variable in VARIABLES}
    for line in final:
        if line.startswith("ENV "):
            names = {pair.split("=")[0] for pair in line.split()[1:]}
            assert {n for n in names if not n.startswith("PYTHON")} <= known
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv"} <= set(ignored)


def requirement_floors(requirements: list[str]) -> dict[str, str]:
    """name -> the version after `>=`, for every requirement that has a floor."""
    floors: dict[str, str] = {}
    for requirement in requirements:
        name = requirement.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip()
        for clause in requirement.split(";")[0].split(","):
            if ">=" in clause:
                floors[name.lower()] = clause.split(">=")[1].strip()
    return floors


def test_the_floors_file_pins_every_floor_the_service_and_demo_declare() -> None:
    """constraints-floors.txt (the floors CI job) pins exactly each runtime and demo floor of
    pyproject.toml: a floor raised in one place and not the other fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = requirement_floors(
        [*project["dependencies"], *project["optional-dependencies"]["demo"]]
    )
    pinned: dict[str, str] = {}
    for line in (ROOT / "constraints-floors.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pinned[name.strip().lower()] = version.strip()
    assert pinned == {name: declared[name] for name in pinned}, "a pin is not its floor"
    missing = sorted(set(declared) - set(pinned))
    assert not missing, f"floors not pinned in constraints-floors.txt: {missing}"
