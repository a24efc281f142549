"""`reservation demo`: the whole shop on one machine, in one command, with nothing to set up.

The demo is a small supervisor. It picks the stores (REDIS_URL, else a `redis-server` of its
own on a free loopback port, else the embedded fakeredis inside the service; MONGODB_URI,
else nx-27017 with its files in the data directory, so orders survive a restart), starts the
Stripe simulator and `reservation serve` as child processes wired to each other (the API base,
the webhook URL and its secret, PUBLIC_URL and the admin token agree on both sides), seeds a
few products when the catalog is empty, prints where to look, and waits. A stop request
(Ctrl-C, SIGTERM) or a child that dies stops everything it started, newest first.

The children run in sessions of their own, so a Ctrl-C typed in the terminal reaches the
demo alone and the demo stops them in order: the service first (it finishes its requests),
then the simulator, then the stores.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness import servers
from harness.servers import free_port, log_tail, stop_process, wait_for_http
from reservation.settings import Settings
from reservation.stores.embedded import EmbeddedMongo, NotInstalled, require_embedded_redis

# What a visitor should see: a drop of a few units (one per customer), a larger stock, and a
# product with a per-customer limit of two.
DEMO_PRODUCTS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "sneaker-drop",
        {
            "name": "Numbered sneaker drop",
            "price": 18900,
            "currency": "eur",
            "stock": 5,
            "max_per_customer": 1,
        },
    ),
    ("hoodie", {"name": "Heavyweight hoodie", "price": 6900, "currency": "eur", "stock": 200}),
    (
        "signed-poster",
        {
            "name": "Signed tour poster",
            "price": 2500,
            "currency": "eur",
            "stock": 30,
            "max_per_customer": 2,
        },
    ),
)
# Short holds, so a visitor sees units come back; a sweeper often enough to see it happen.
# Either is kept when its variable is set.
DEMO_DEFAULTS = {"RESERVATION_HOLD_SECONDS": "120", "RESERVATION_SWEEP_SECONDS": "5"}
# The simulator takes any key; the service needs one to talk to "Stripe".
DEMO_STRIPE_KEY = "sk_test_reservation_demo"
START_SECONDS = 60.0
POLL_SECONDS = 0.1  # how soon a stop request or a dead child is seen


class DemoError(Exception):
    """The demo cannot start or keep running; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Child:
    """A process the demo started, and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass(frozen=True, slots=True)
class Wiring:
    """What ties the service and the simulator together: where each listens, and the secrets
    both sides must agree on."""

    url: str
    sim_port: int
    sim_url: str
    webhook_secret: str
    admin_token: str
    session_secret: str


@dataclass(frozen=True, slots=True)
class Running:
    """Where the started demo answers, as printed."""

    url: str
    ops_url: str
    sim_url: str
    admin_token: str
    data_dir: Path
    redis: str
    mongodb: str
    seeded: tuple[str, ...]


def url_of(host: str, port: int) -> str:
    """The URL a browser on this machine uses for a server bound to `host`."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def writable_data_dir(data_dir: str) -> Path:
    """The data directory, created and checked writable; DemoError saying so otherwise."""
    path = Path(data_dir).absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise DemoError(
            f"cannot write to {path} ({exc.strerror or exc}): the demo keeps its MongoDB data, "
            "its Redis files and its logs there. Run it from a directory you can write to, "
            "or set RESERVATION_DATA_DIR to one."
        ) from None
    return path


def check_port_free(host: str, port: int) -> None:
    """DemoError when something already listens on host:port (serve would fail later)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DemoError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): "
                "choose another port with --port"
            ) from None


class Demo:
    """Start, watch and stop the demo's processes; `echo` prints to the person running it."""

    def __init__(
        self,
        settings: Settings,
        host: str,
        port: int,
        echo: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.echo = echo
        self.environ = dict(os.environ)
        self.children: list[Child] = []

    def run(self, stopped: Callable[[], bool]) -> None:
        """Start everything, then run until `stopped()` is true; stop everything."""
        with contextlib.ExitStack() as stack:
            running = self.start(stack, stopped)
            if running is None:
                return  # asked to stop before it was up
            self.echo(banner(running))
            self.watch(stopped)
            self.echo("reservation demo: stopping")

    def start(self, stack: contextlib.ExitStack, stopped: Callable[[], bool]) -> Running | None:
        """The stores, the simulator and the service, ready and seeded; None when asked to
        stop on the way."""
        data_dir = writable_data_dir(self.settings.data_dir)
        check_port_free(self.host, self.port)
        logs = data_dir / "logs"
        logs.mkdir(exist_ok=True)
        redis_url, redis_text = self.redis(stack, data_dir)
        mongodb_uri, mongodb_text = self.mongodb(stack, data_dir)
        if stopped():
            return None
        wiring = self.wiring()
        sim = self.spawn(stack, "stripe-sim", self.simulator_arguments(wiring), self.environ, logs)
        env = self.service_env(wiring, redis_url, mongodb_uri, data_dir)
        serve = self.spawn(
            stack,
            "serve",
            ["serve", "--host", self.host, "--port", str(self.port)],
            env,
            logs,
        )
        self.wait_ready("the Stripe simulator", f"{wiring.sim_url}/_sim/faults", sim, stopped)
        self.wait_ready("the service", f"{wiring.url}/readyz", serve, stopped)
        if stopped():
            return None
        seeded = seed(wiring.url, wiring.admin_token)
        return Running(
            url=wiring.url,
            ops_url=f"{wiring.url}/ops",
            sim_url=wiring.sim_url,
            admin_token=wiring.admin_token,
            data_dir=data_dir,
            redis=redis_text,
            mongodb=mongodb_text,
            seeded=seeded,
        )

    def wiring(self) -> Wiring:
        """Where the service and the simulator listen, and the secrets both sides must share."""
        sim_port = free_port()
        return Wiring(
            url=url_of(self.host, self.port),
            sim_port=sim_port,
            sim_url=url_of(self.host, sim_port),
            webhook_secret="whsec_" + secrets.token_urlsafe(24),
            admin_token=self.settings.admin_token or secrets.token_urlsafe(18),
            # Sessions of an earlier run are still known by their records in MongoDB.
            session_secret=",".join(self.settings.session_secrets) or secrets.token_urlsafe(32),
        )

    def simulator_arguments(self, wiring: Wiring) -> list[str]:
        """`reservation stripe-sim` delivering its webhooks to the service, signed."""
        return [
            *("stripe-sim", "--host", self.host, "--port", str(wiring.sim_port)),
            *("--webhook-url", f"{wiring.url}/v1/webhooks/stripe"),
            *("--webhook-secret", wiring.webhook_secret),
        ]

    def service_env(
        self, wiring: Wiring, redis_url: str | None, mongodb_uri: str, data_dir: Path
    ) -> dict[str, str]:
        """The service's environment: the demo's defaults under the caller's, the stores picked
        (no REDIS_URL: fakeredis inside the service), Stripe at the simulator."""
        env = {**DEMO_DEFAULTS, **self.environ}
        env.pop("REDIS_URL", None)
        env.pop("REDIS_CLUSTER", None)
        if redis_url is not None:
            env["REDIS_URL"] = redis_url
            if self.settings.redis_cluster and redis_url == self.settings.redis_url:
                env["REDIS_CLUSTER"] = "1"
        env.update(
            {
                "MONGODB_URI": mongodb_uri,
                "STRIPE_SECRET_KEY": DEMO_STRIPE_KEY,
                "STRIPE_API_BASE": wiring.sim_url,
                "STRIPE_WEBHOOK_SECRET": wiring.webhook_secret,
                "RESERVATION_SESSION_SECRET": wiring.session_secret,
                "PUBLIC_URL": wiring.url,
                "RESERVATION_ADMIN_TOKEN": wiring.admin_token,
                "RESERVATION_DATA_DIR": str(data_dir),
            }
        )
        return env

    def redis(self, stack: contextlib.ExitStack, data_dir: Path) -> tuple[str | None, str]:
        """REDIS_URL; else a redis-server of the demo's own; else None (fakeredis in serve)."""
        if self.settings.redis_url is not None:
            return self.settings.redis_url, f"{redact(self.settings.redis_url)} (REDIS_URL)"
        if servers.REDIS_SERVER is None:
            try:
                require_embedded_redis()
            except NotInstalled as exc:
                raise DemoError(str(exc)) from None
            return None, (
                "embedded fakeredis inside the service (no redis-server on PATH): "
                "holds are lost when the demo stops"
            )
        port = free_port()
        process = servers.start_redis(data_dir / "redis", port)
        stack.callback(stop_process, process)
        return f"redis://127.0.0.1:{port}/0", f"redis-server on 127.0.0.1:{port}, started here"

    def mongodb(self, stack: contextlib.ExitStack, data_dir: Path) -> tuple[str, str]:
        """MONGODB_URI; else nx-27017 with its files in the data directory."""
        if self.settings.mongodb_uri is not None:
            return self.settings.mongodb_uri, f"{redact(self.settings.mongodb_uri)} (MONGODB_URI)"
        embedded = EmbeddedMongo(data_dir)
        stack.callback(embedded.stop)
        try:
            uri = embedded.start()
        except NotInstalled as exc:
            raise DemoError(str(exc)) from None
        return uri, f"nx-27017 at {uri}, data in {data_dir / 'data'}"

    def spawn(
        self,
        stack: contextlib.ExitStack,
        name: str,
        arguments: list[str],
        env: Mapping[str, str],
        logs: Path,
    ) -> Child:
        log = logs / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "reservation", *arguments],
                env=dict(env),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        stack.callback(stop_process, process, session=True)
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def wait_ready(self, what: str, url: str, child: Child, stopped: Callable[[], bool]) -> None:
        """Until `url` answers; DemoError with the end of the child's log if it never does.
        A stop request ends the wait (the caller sees it)."""

        def exited() -> int | None:
            return 0 if stopped() else child.process.poll()

        try:
            wait_for_http(url, what, START_SECONDS, exited=exited, log=child.log)
        except RuntimeError as exc:
            if not stopped():
                raise DemoError(str(exc)) from None

    def watch(self, stopped: Callable[[], bool]) -> None:
        """Sleep until a stop request; DemoError when a child exits on its own meanwhile."""
        while not stopped():
            for child in self.children:
                status = child.process.poll()
                if status is not None:
                    raise DemoError(
                        f"{child.name} exited with {status}; the demo stops. "
                        f"The end of its log ({child.log}):\n{log_tail(child.log)}"
                    )
            time.sleep(POLL_SECONDS)


def seed(url: str, admin_token: str) -> tuple[str, ...]:
    """PUT the demo products when the catalog is empty; the SKUs written (none otherwise)."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=url, timeout=10, headers=headers) as client:
        listed = client.get("/v1/products")
        listed.raise_for_status()
        if listed.json()["data"]:
            return ()
        for sku, body in DEMO_PRODUCTS:
            answer = client.put(f"/v1/products/{sku}", json=body)
            if answer.status_code != 200:
                raise DemoError(f"seeding {sku} was refused: {answer.status_code} {answer.text}")
    return tuple(sku for sku, _ in DEMO_PRODUCTS)


def redact(url: str) -> str:
    """A store URL without its password, fit to print."""
    parsed = httpx.URL(url)
    if parsed.password:
        return str(parsed.copy_with(password="***"))
    return url


def banner(running: Running) -> str:
    seeded = (
        f"seeded {', '.join(running.seeded)}"
        if running.seeded
        else "the catalog already had products: kept as they are"
    )
    lines = [
        "",
        "reservation demo is running",
        "",
        f"  storefront          {running.url}/",
        f"  operations page     {running.ops_url}",
        f"  admin token         {running.admin_token}",
        f"  Stripe simulator    {running.sim_url}  (pay, decline, pay later or cancel there)",
        f"  API                 {running.url}/v1/products  (docs/api.md)",
        "",
        f"  Redis               {running.redis}",
        f"  MongoDB             {running.mongodb}",
        f"  logs                {running.data_dir / 'logs'}",
        f"  products            {seeded}",
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)
