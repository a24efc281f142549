"""`reservation demo` as a person runs it: one process, started in a directory, that starts the
stores, the Stripe simulator and the service, seeds the catalog, prints where to look, sells,
and stops every process it started on SIGTERM or Ctrl-C. Real processes, real HTTP."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import jwt
import psutil
import pytest
from playwright.sync_api import Request, expect

from harness.demo import DEMO_PRODUCTS
from harness.servers import free_port
from tests.browser import WAIT_MS, chromium, screenshot
from tests.conftest import REDIS_URL
from tests.server import forget_run

READY = "Press Ctrl-C to stop."
START_SECONDS = 90.0
# What the demo decides itself: the tests start it as a newcomer would, with none of these set.
UNSET = (
    "REDIS_URL",
    "REDIS_CLUSTER",
    "MONGODB_URI",
    "MONGODB_DATABASE",
    "RESERVATION_DATA_DIR",
    "RESERVATION_ADMIN_TOKEN",
    "RESERVATION_KEY_PREFIX",
    "RESERVATION_HOLD_SECONDS",
    "STRIPE_SECRET_KEY",
    "STRIPE_API_BASE",
    "STRIPE_WEBHOOK_SECRET",
    "PUBLIC_URL",
    "RESERVATION_CUSTOMER_TOKEN_SECRET",
)


@dataclass
class RunningDemo:
    process: subprocess.Popen[str]
    output: queue.Queue[str | None] = field(default_factory=queue.Queue)
    lines: list[str] = field(default_factory=list)
    banner: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.banner["storefront"].rstrip("/")

    @property
    def sim_url(self) -> str:
        return self.banner["Stripe simulator"].split()[0]

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.banner['admin token']}"}

    def read_to_end(self) -> None:
        """Everything the demo printed after its banner, once it has exited."""
        while (line := self.output.get(timeout=10)) is not None:
            self.lines.append(line)

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self, signum: int) -> None:
        """Send `signum`; the demo exits 0 and every process it had started is gone."""
        started = self.descendants()
        self.process.send_signal(signum)
        status = self.process.wait(timeout=60)
        self.read_to_end()
        assert status == 0, "\n".join(self.lines)
        _, alive = psutil.wait_procs(started, timeout=15)
        assert alive == [], [" ".join(process.cmdline()) for process in alive]


def _environment(**changes: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in UNSET}
    env.update(changes)
    return env


def _read_lines(process: subprocess.Popen[str], into: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        into.put(line.rstrip("\n"))
    into.put(None)


@contextmanager
def demo(cwd: Path, port: int, *, wrapper: Sequence[str] = (), **env: str) -> Iterator[RunningDemo]:
    """Start `reservation demo` in `cwd` (through `wrapper`, a command that runs it); yield it
    once it printed its banner (or ended)."""
    process = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "reservation", "demo", "--port", str(port)],
        cwd=cwd,
        env=_environment(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = RunningDemo(process)
    lines = running.output
    reader = threading.Thread(target=_read_lines, args=(process, lines), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                lines.put(None)  # read_to_end finds the end again
                break
            running.lines.append(line)
            label, _, value = line.strip().partition("  ")
            if value:
                running.banner[label] = value.strip()
            if line == READY:
                break
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.wait()
        reader.join(timeout=10)
        if process.stdout is not None and not reader.is_alive():
            process.stdout.close()


def _token(running: RunningDemo, name: str) -> tuple[str, dict[str, str]]:
    """What the demo's shop backend answers a visitor who typed `name`: the customer id it
    vouches for, and the header that carries its token."""
    answer = httpx.post(f"{running.url}/shop/token", json={"name": name}, timeout=10)
    assert answer.status_code == 200, answer.text
    minted = answer.json()
    return minted["customer_id"], {"Authorization": f"Bearer {minted['token']}"}


def _buy(running: RunningDemo, sku: str, customer: str) -> str:
    """Check out one unit as the buyer the shop backend vouches for under the name `customer`,
    and pay on the simulator; the paid session's id."""
    customer_id, bearer = _token(running, customer)
    with httpx.Client(base_url=running.url, timeout=30) as client:
        started = client.post(
            "/v1/checkout",
            json={"items": [{"sku": sku, "quantity": 1}], "customer_id": customer_id},
            headers=bearer,
        )
        assert started.status_code == 201, started.text
        session_id: str = started.json()["checkout_session_id"]
        assert started.json()["url"].startswith(running.sim_url)
        paid = httpx.post(f"{running.sim_url}/_sim/sessions/{session_id}/complete", timeout=30)
        assert paid.status_code == 200, paid.text
        deadline = time.monotonic() + 30
        while client.get(f"/v1/checkout/{session_id}").json()["order_status"] != "paid":
            assert time.monotonic() < deadline, "the paid webhook did not land"
            time.sleep(0.1)
    return session_id


def _product(running: RunningDemo, sku: str) -> dict[str, Any]:
    answer = httpx.get(f"{running.url}/v1/products/{sku}", timeout=10)
    assert answer.status_code == 200, answer.text
    product: dict[str, Any] = answer.json()
    return product


def _waitlist_reaches_the_shop(running: RunningDemo) -> None:
    """The waiting-list product is sold out (its unit held by the simulated early bird); a
    buyer joins its list; one more unit is offered to them, and the service's signed webhook
    reaches the demo's shop backend, which tells that buyer (GET /shop/offers)."""
    vinyl = _product(running, "last-vinyl")
    assert (vinyl["stock"], vinyl["reserved"], vinyl["available"]) == (1, 1, 0)
    customer_id, bearer = _token(running, "Wanda Waiter")
    with httpx.Client(base_url=running.url, timeout=10, headers=bearer) as client:
        joined = client.post("/v1/waitlist/last-vinyl", json={"quantity": 1})
        assert joined.status_code == 201, joined.text
        body = {"name": "Last test-pressing vinyl (waiting list)", "price": 4500}
        more = {**body, "currency": "eur", "stock": 2, "max_per_customer": 1}
        put = client.put("/v1/products/last-vinyl", json=more, headers=running.admin)
        assert put.status_code == 200, put.text
        entry = client.get(f"/v1/waitlist/last-vinyl/{customer_id}").json()
        assert entry["status"] == "offered", entry
        deadline = time.monotonic() + 30
        while not (offers := client.get("/shop/offers").json()["offers"]):
            assert time.monotonic() < deadline, "the shop's webhook did not reach the shop"
            time.sleep(0.1)
    assert [(offer["reservation_id"], offer["status"]) for offer in offers] == [
        (entry["offer"]["reservation_id"], "offered")
    ]


def _shop_webhook_secret_is_not_printed(running: RunningDemo, tmp_path: Path) -> None:
    """The service and the shop backend share a generated secret for the shop's webhooks,
    through their environments alone: not in the demo's output nor in any log."""
    [serve] = [p for p in running.descendants() if " serve " in " ".join(p.cmdline()) + " "]
    [shop] = [p for p in running.descendants() if "harness.shop_front" in " ".join(p.cmdline())]
    secret = serve.environ()["RESERVATION_SHOP_WEBHOOK_SECRET"]
    assert len(secret) >= 32
    assert shop.environ()["RESERVATION_SHOP_WEBHOOK_SECRET"] == secret
    assert secret not in "\n".join(running.lines)
    logs = sorted((tmp_path / ".reservation" / "logs").glob("*.log"))
    assert {log.name for log in logs} >= {"serve.log", "shop.log"}
    for log in logs:
        assert secret not in log.read_text(errors="replace"), log


def test_the_demo_sells_stops_cleanly_and_keeps_its_orders(tmp_path: Path) -> None:
    port = free_port()
    with demo(tmp_path, port) as running:
        assert running.lines[-1] == READY, "\n".join(running.lines)
        assert running.url == f"http://127.0.0.1:{port}"
        assert running.banner["operations page"] == f"http://127.0.0.1:{port}/ops"
        assert "redis-server" in running.banner["Redis"]
        assert "nx-27017" in running.banner["MongoDB"]
        assert str(tmp_path / ".reservation") in running.banner["MongoDB"]
        commands = [" ".join(child.cmdline()) for child in running.descendants()]
        for program in ("redis-server", "nx-27017", "stripe-sim", "serve", "harness.shop_front"):
            assert any(program in command for command in commands), (program, commands)

        # The storefront and the operations page are served; the catalog was seeded.
        assert httpx.get(running.url + "/", timeout=10).status_code == 200
        assert httpx.get(running.url + "/ops", timeout=10).status_code == 200
        listed = httpx.get(running.url + "/v1/products", timeout=10).json()["data"]
        assert [product["sku"] for product in listed] == sorted(sku for sku, _ in DEMO_PRODUCTS)
        limits = {product["sku"]: product["max_per_customer"] for product in listed}
        assert limits == {
            "hoodie": None,
            "last-vinyl": 1,
            "launch-jacket": 1,
            "signed-poster": 2,
            "sneaker-drop": 1,
        }
        # The fair start: the launch opens a minute and a half after the seeding, behind a line.
        launch = {product["sku"]: product for product in listed}["launch-jacket"]
        assert launch["waiting_room"] == {
            "admit_per_second": 2,
            "max_active": 3,
            "admission_seconds": 120,
        }
        assert launch["sale_starts_at"] is not None
        _waitlist_reaches_the_shop(running)
        _shop_webhook_secret_is_not_printed(running, tmp_path)
        refused = httpx.get(f"{running.url}/v1/ops/summary", timeout=10)
        assert refused.status_code == 401
        ops = httpx.get(f"{running.url}/v1/ops/summary", headers=running.admin, timeout=10)
        assert ops.status_code == 200

        # Holds are short (two minutes), the sweeper is on.
        held = httpx.post(
            f"{running.url}/v1/reservations",
            json={"items": [{"sku": "signed-poster", "quantity": 1}]},
            timeout=10,
        )
        assert held.status_code == 201, held.text
        hold = held.json()
        assert hold["status"] == "held"

        # A whole purchase: checkout, pay on the simulator, the signed webhook, the order.
        session_id = _buy(running, "sneaker-drop", "cus_demo")
        order = httpx.get(f"{running.url}/v1/orders/{session_id}", headers=running.admin)
        assert order.status_code == 200, order.text
        assert order.json()["status"] == "paid"
        assert _product(running, "sneaker-drop")["sold"] == 1
        running.stop(signal.SIGTERM)
    assert "stopping" in running.lines[-1]

    # Started again in the same directory: the order is still there, the counters come back
    # from MongoDB, and the catalog is not seeded twice.
    with demo(tmp_path, port) as again:
        assert again.lines[-1] == READY, "\n".join(again.lines)
        assert "already had products" in again.banner["products"]
        order = httpx.get(f"{again.url}/v1/orders/{session_id}", headers=again.admin)
        assert order.status_code == 200, order.text
        assert order.json()["status"] == "paid"
        drop = _product(again, "sneaker-drop")
        assert (drop["stock"], drop["sold"], drop["available"]) == (5, 1, 4)
        again.stop(signal.SIGINT)


def test_a_visitor_buys_in_a_browser_from_the_demo_s_storefront(tmp_path: Path) -> None:
    """Chromium on the demo's storefront: the seeded drop, Buy, the simulator's page, Pay, the
    success page once the webhook landed; the picture the README opens with."""
    with demo(tmp_path, free_port()) as running, chromium() as browser:
        context = browser.new_context(
            base_url=running.url, viewport={"width": 1200, "height": 800}, locale="en-US"
        )
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        sent: dict[str, str | None] = {}  # "POST /v1/reservations" -> its Authorization

        def note(request: Request) -> None:
            sent[f"{request.method} {urlparse(request.url).path}"] = request.headers.get(
                "authorization"
            )

        page.on("request", note)
        page.goto("/")
        drop = page.locator('li.product[data-sku="sneaker-drop"]')
        expect(drop.locator('[data-field="stock"]')).to_have_text("5 of 5 left")
        expect(drop.locator(".limit")).to_have_text("At most 1 per customer")
        # The shop's backend vouches for a named buyer: Buy first asks for the name.
        drop.get_by_role("button", name="Buy").click()
        expect(drop.locator(".message")).to_contain_text("Type your name above first")
        expect(page.get_by_label("Your name")).to_be_focused()
        page.get_by_label("Your name").fill("Ada Lovelace")
        page.get_by_role("button", name="Continue").click()
        expect(page.locator("#who-shown")).to_have_text("Ada Lovelace")
        buyer = page.evaluate("JSON.parse(localStorage.getItem('shop.buyer'))")
        assert buyer["customer_id"] == "ada-lovelace"
        drop.get_by_role("button", name="Buy").click()
        hold = page.locator(".hold").filter(has_text="Numbered sneaker drop")
        expect(hold.get_by_role("timer")).to_have_text(re.compile(r"^(1|2):\d\d$"))
        expect(drop.locator('[data-field="stock"]')).to_have_text("4 of 5 left, 1 held in carts")
        screenshot(page, "demo.png")
        hold.get_by_role("button", name="Pay").click()
        page.wait_for_url(f"{running.sim_url}/pay/*")
        page.get_by_role("button", name="Pay", exact=True).click()
        page.wait_for_url(f"{running.url}/checkout/success?session_id=*")
        expect(page.locator("main")).to_have_attribute("data-status", "paid")
        assert _product(running, "sneaker-drop")["sold"] == 1
        # The hold and the checkout went with the buyer's token, which names the buyer.
        assert sent["POST /v1/reservations"] == f"Bearer {buyer['token']}"
        assert sent["POST /v1/checkout"] == f"Bearer {buyer['token']}"
        claims = jwt.decode(buyer["token"], options={"verify_signature": False})
        assert (claims["sub"], claims["aud"]) == ("ada-lovelace", "reservation")
        assert claims["exp"] - claims["iat"] == 15 * 60
        context.close()
        assert errors == []
        running.stop(signal.SIGTERM)


def test_without_redis_server_on_path_the_demo_runs_on_the_embedded_redis(
    tmp_path: Path,
) -> None:
    hidden = tmp_path / "bin"  # a PATH with no redis-server in it
    hidden.mkdir()
    with demo(tmp_path, free_port(), PATH=str(hidden)) as running:
        assert running.lines[-1] == READY, "\n".join(running.lines)
        assert "embedded fakeredis" in running.banner["Redis"]
        commands = [" ".join(child.cmdline()) for child in running.descendants()]
        assert not any("redis-server" in command for command in commands), commands
        session_id = _buy(running, "hoodie", "cus_embedded")
        order = httpx.get(f"{running.url}/v1/orders/{session_id}", headers=running.admin)
        assert order.json()["status"] == "paid"
        running.stop(signal.SIGTERM)


def test_with_redis_url_and_mongodb_uri_the_demo_uses_them_and_starts_no_store(
    tmp_path: Path, mongodb_uri: str
) -> None:
    prefix, database = f"demo-{uuid.uuid4().hex[:8]}", f"demo_{uuid.uuid4().hex[:8]}"
    try:
        with demo(
            tmp_path,
            free_port(),
            REDIS_URL=REDIS_URL,
            MONGODB_URI=mongodb_uri,
            MONGODB_DATABASE=database,
            RESERVATION_KEY_PREFIX=prefix,
            RESERVATION_ADMIN_TOKEN="a-token-of-my-own",
        ) as running:
            assert running.lines[-1] == READY, "\n".join(running.lines)
            assert running.banner["Redis"].endswith("(REDIS_URL)")
            assert running.banner["MongoDB"].endswith("(MONGODB_URI)")
            assert running.banner["admin token"] == "a-token-of-my-own"
            commands = [" ".join(child.cmdline()) for child in running.descendants()]
            assert not any("redis-server" in c or "nx-27017" in c for c in commands), commands
            session_id = _buy(running, "hoodie", "cus_urls")
            running.stop(signal.SIGINT)
        import pymongo

        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(mongodb_uri)
        try:
            stored = client[database]["orders"].find_one({"checkout_session_id": session_id})
        finally:
            client.close()
        assert stored is not None
        assert stored["status"] == "paid"
    finally:
        forget_run(prefix, database, mongodb_uri)


def test_a_port_in_use_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with demo(tmp_path, port) as running:
            assert running.process.wait(timeout=60) == 1
            running.read_to_end()
    output = "\n".join(running.lines)
    assert f"cannot listen on 127.0.0.1:{port}" in output, output
    assert "--port" in output


def test_an_unwritable_directory_is_said_clearly_and_nothing_is_left(tmp_path: Path) -> None:
    """Run from a directory the user cannot write to. Root writes anywhere by its
    CAP_DAC_OVERRIDE capability, so as root the demo runs without it (util-linux's setpriv)."""
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    wrapper: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "root needs util-linux's setpriv to drop CAP_DAC_OVERRIDE"
        dropped = "-dac_override,-dac_read_search"
        wrapper = [setpriv, f"--inh-caps={dropped}", f"--bounding-set={dropped}"]
    try:
        with demo(readonly, free_port(), wrapper=wrapper) as running:
            assert running.process.wait(timeout=60) == 1
            running.read_to_end()
    finally:
        readonly.chmod(0o755)
    output = "\n".join(running.lines)
    assert f"cannot write to {readonly / '.reservation'}" in output, output
    assert "RESERVATION_DATA_DIR" in output
    assert not (readonly / ".reservation").exists()


@pytest.fixture(autouse=True)
def _no_stray_demo(tmp_path: Path) -> Iterator[None]:
    """Whatever a test does, no process keeps running on its directory afterwards."""
    yield
    left = [
        process.info["pid"]
        for process in psutil.process_iter(["pid", "cmdline"])
        if any(str(tmp_path) in part for part in process.info["cmdline"] or ())
    ]
    assert left == []
