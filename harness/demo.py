"""`reservation demo`: the whole shop on one machine, in one command, with nothing to set up.

The demo is a small supervisor. It picks the stores (REDIS_URL, else a `redis-server` of its
own on a free loopback port, else the embedded fakeredis inside the service; MONGODB_URI,
else nx-27017 with its files in the data directory, so orders survive a restart), starts the
Stripe simulator, `reservation serve` and the shop's backend (harness/shop_front.py) as child
processes wired to each other (the API base, the webhook URL and its secret, PUBLIC_URL, the
admin token, the customer tokens' secret, and the shop webhooks' URL and secret, agree on every
side), seeds a few products when the catalog is empty, prints where to look, and waits.

Visitors reach the shop's backend on --port: it hands out customer tokens (a visitor types a
name in the storefront) and passes everything else to the service, which listens on a port of
its own. The service verifies those tokens with RESERVATION_CUSTOMER_TOKEN_SECRET: the caller's,
else a fresh one; the demo's shop signs HS256 tokens for the default audience, so the demo
drops the other customer-token settings (a public key, a JWKS URL, an audience, an issuer).

A stop request (Ctrl-C, SIGTERM) or a child that dies stops everything it started, newest first.

The children run in sessions of their own, so a Ctrl-C typed in the terminal reaches the
demo alone and the demo stops them in order: the shop's backend first, then the service (it
finishes its requests), then the simulator, then the stores.
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
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness import servers
from harness.customer_tokens import SECRET_VARIABLE, new_secret
from harness.demo_catalog import DEMO_PRODUCTS, SeedError, seed
from harness.servers import free_port, log_tail, stop_process, wait_for_http
from harness.shop_offers import HOOKS_PATH, HOOKS_SECRET_VARIABLE
from reservation.settings import Settings
from reservation.stores.embedded import EmbeddedMongo, NotInstalled, require_embedded_redis

# Short holds and offers, so a visitor sees units come back and go down a waiting list; a
# sweeper often enough to see it happen. Each is kept when its variable is set.
DEMO_DEFAULTS = {
    "RESERVATION_HOLD_SECONDS": "120",
    "RESERVATION_SWEEP_SECONDS": "5",
    "RESERVATION_OFFER_SECONDS": "120",
}
# The simulator takes any key; the service needs one to talk to "Stripe".
DEMO_STRIPE_KEY = "sk_test_reservation_demo"
START_SECONDS = 60.0
# The customer-token settings the demo's shop cannot sign for (it signs HS256 tokens for the
# default audience with the demo's secret).
FOREIGN_TOKEN_SETTINGS = (
    "RESERVATION_CUSTOMER_TOKEN_PUBLIC_KEY",
    "RESERVATION_CUSTOMER_JWKS_URL",
    "RESERVATION_CUSTOMER_TOKEN_AUDIENCE",
    "RESERVATION_CUSTOMER_TOKEN_ISSUER",
)
__all__ = ["DEMO_PRODUCTS", "Demo", "DemoError"]
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
    """What ties the service, the shop's backend and the simulator together: where each
    listens, and the secrets both sides must agree on. `url` is the shop's (what visitors and
    Stripe's redirects reach), `service_url` the service's own."""

    url: str
    service_port: int
    service_url: str
    sim_port: int
    sim_url: str
    webhook_secret: str
    admin_token: str
    session_secret: str
    customer_token_secret: str = field(repr=False)
    shop_webhook_secret: str = field(repr=False)


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
        serve_arguments = ["serve", "--host", "127.0.0.1", "--port", str(wiring.service_port)]
        serve = self.spawn(stack, "serve", serve_arguments, env, logs)
        shop_arguments = self.shop_arguments(wiring)
        shop = self.spawn(stack, "shop", shop_arguments, env, logs, "harness.shop_front")
        self.wait_ready("the Stripe simulator", f"{wiring.sim_url}/_sim/faults", sim, stopped)
        self.wait_ready("the service", f"{wiring.service_url}/readyz", serve, stopped)
        self.wait_ready("the shop's backend", f"{wiring.url}/shop", shop, stopped)
        if stopped():
            return None
        try:
            seeded = seed(wiring.service_url, wiring.admin_token, wiring.customer_token_secret)
        except SeedError as exc:
            raise DemoError(str(exc)) from None
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
        sim_port, service_port = free_port(), free_port()
        return Wiring(
            url=url_of(self.host, self.port),
            service_port=service_port,
            service_url=url_of("127.0.0.1", service_port),
            sim_port=sim_port,
            sim_url=url_of(self.host, sim_port),
            webhook_secret="whsec_" + secrets.token_urlsafe(24),
            admin_token=self.settings.admin_token or secrets.token_urlsafe(18),
            # Sessions of an earlier run are still known by their records in MongoDB.
            session_secret=",".join(self.settings.session_secrets) or secrets.token_urlsafe(32),
            customer_token_secret=self.environ.get(SECRET_VARIABLE, "").strip() or new_secret(),
            # The service signs the waiting list's webhooks to the demo's shop with it; only
            # the two processes' environments hold it (never printed).
            shop_webhook_secret=secrets.token_urlsafe(32),
        )

    def simulator_arguments(self, wiring: Wiring) -> list[str]:
        """`reservation stripe-sim` delivering its webhooks to the service, signed."""
        return [
            *("stripe-sim", "--host", self.host, "--port", str(wiring.sim_port)),
            *("--webhook-url", f"{wiring.service_url}/v1/webhooks/stripe"),
            *("--webhook-secret", wiring.webhook_secret),
        ]

    def shop_arguments(self, wiring: Wiring) -> list[str]:
        """The shop's backend on the demo's port, in front of the service (its secret comes
        with the service's environment)."""
        return [
            *("--host", self.host, "--port", str(self.port)),
            *("--upstream", wiring.service_url),
        ]

    def service_env(
        self, wiring: Wiring, redis_url: str | None, mongodb_uri: str, data_dir: Path
    ) -> dict[str, str]:
        """The service's environment: the demo's defaults under the caller's, the stores picked
        (no REDIS_URL: fakeredis inside the service), Stripe at the simulator."""
        env = {**DEMO_DEFAULTS, **self.environ}
        env.pop("REDIS_URL", None)
        env.pop("REDIS_CLUSTER", None)
        for name in FOREIGN_TOKEN_SETTINGS:
            env.pop(name, None)
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
                SECRET_VARIABLE: wiring.customer_token_secret,
                # The waiting list's offers go to the demo's own shop backend, which tells the
                # storefront (harness/shop_offers.py); it reads the secret from this environment.
                "RESERVATION_SHOP_WEBHOOK_URL": f"{wiring.url}{HOOKS_PATH}",
                HOOKS_SECRET_VARIABLE: wiring.shop_webhook_secret,
                # The shop backend in front (harness/shop_front.py) drops the addresses a
                # visitor claims and writes the one it saw: each visitor counts as itself
                # against the limit per address, not all as the backend's loopback address.
                "RESERVATION_TRUSTED_PROXY_HEADER": "X-Forwarded-For",
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
        module: str = "reservation",
    ) -> Child:
        log = logs / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", module, *arguments],
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
        f"  shop backend        {running.url}/shop/token  (type a name: a customer token)",
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
