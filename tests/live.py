"""The shop as a person runs it: `reservation serve` and `reservation stripe-sim` as real
processes on loopback ports, wired as the README wires them (STRIPE_API_BASE, the webhook URL
and secret, PUBLIC_URL), against the Redis at 127.0.0.1:6379 (a key prefix of their own) and
the tests' MongoDB (a database of their own). The browser tests and the no-JavaScript pay page
test drive it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymongo
import pytest
import redis

from harness.customer_tokens import SECRET_VARIABLE
from harness.servers import free_port, stop_process, wait_for_http
from harness.shop_offers import HOOKS_PATH, HOOKS_SECRET_VARIABLE
from reservation.core.keys import KeySpace
from tests.api import ADMIN
from tests.conftest import REDIS_URL, age_hold_call
from tests.server import Server, start_server, stop_server
from tests.stripe_fake import API_KEY

WEBHOOK_SECRET = "whsec_live_test"
CUSTOMER_TOKEN_SECRET = "customer-token-secret-of-the-live-tests-0123456789"
SHOP_WEBHOOK_SECRET = "shop-webhook-secret-of-the-live-tests-0123456789"
START_SECONDS = 30.0


@dataclass
class LiveShop:
    """A running service and the simulator it pays through."""

    url: str
    sim_url: str
    server: Server
    mongodb_uri: str

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def put_product(self, sku: str, stock: int, **fields: Any) -> dict[str, Any]:
        body = {"name": f"Product {sku}", "price": 2500, "currency": "eur", "stock": stock}
        body.update(fields)
        answer = httpx.put(f"{self.url}/v1/products/{sku}", json=body, headers=ADMIN, timeout=10)
        assert answer.status_code == 200, answer.text
        product: dict[str, Any] = answer.json()
        return product

    def product(self, sku: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/v1/products/{sku}", timeout=10)
        assert answer.status_code == 200, answer.text
        product: dict[str, Any] = answer.json()
        return product

    def stored_orders(self) -> list[dict[str, Any]]:
        """The orders in MongoDB, as stored (not through the API)."""
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(self.mongodb_uri)
        try:
            return list(client[self.server.database]["orders"].find({}, {"_id": False}))
        finally:
            client.close()

    def age_hold(self, reservation_id: str) -> None:
        """Make one of the shop's live holds lapse, as if its time had passed (see
        tests.conftest.age_hold): the service then finds it lapsed, as it would at its end."""
        client = redis.Redis.from_url(REDIS_URL)
        try:
            client.eval(*age_hold_call(KeySpace(self.server.prefix), reservation_id))
        finally:
            client.close()

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:g} s: {what}")
            time.sleep(0.1)


def start_live_shop(
    stack: ExitStack, workdir: Path, mongodb_uri: str, *, named: bool = False, **env: str
) -> LiveShop:
    """Start both processes (at once), stopped and cleaned up by `stack`. `named`: the demo's
    shop backend (harness/shop_front.py) in front of the service, as `reservation demo` runs
    it, handing out customer tokens signed with CUSTOMER_TOKEN_SECRET and receiving the
    waiting list's webhooks signed with SHOP_WEBHOOK_SECRET; the shop's URL is its."""
    port, sim_port = free_port(), free_port()
    url, sim_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sim_port}"
    service_url = url
    if named:
        url = f"http://127.0.0.1:{free_port()}"
        env = {
            SECRET_VARIABLE: CUSTOMER_TOKEN_SECRET,
            "RESERVATION_SHOP_WEBHOOK_URL": f"{url}{HOOKS_PATH}",
            HOOKS_SECRET_VARIABLE: SHOP_WEBHOOK_SECRET,
            **env,
        }
    workdir.mkdir(parents=True, exist_ok=True)
    sim_log = workdir / "stripe-sim.log"
    with sim_log.open("wb") as output:
        sim = subprocess.Popen(
            [
                *(sys.executable, "-m", "reservation", "stripe-sim", "--port", str(sim_port)),
                *("--webhook-url", f"{service_url}/v1/webhooks/stripe"),
                *("--webhook-secret", WEBHOOK_SECRET),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    stack.callback(stop_process, sim)
    server = start_server(
        workdir,
        mongodb_uri,
        port=port,
        STRIPE_SECRET_KEY=API_KEY,
        STRIPE_API_BASE=sim_url,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        PUBLIC_URL=url,
        **env,
    )
    stack.callback(stop_server, server, mongodb_uri)
    if named:
        start_shop_front(stack, workdir, url, service_url)
    wait_for_http(f"{sim_url}/_sim/faults", sim_url, START_SECONDS, exited=sim.poll, log=sim_log)
    return LiveShop(url=url, sim_url=sim_url, server=server, mongodb_uri=mongodb_uri)


def start_shop_front(stack: ExitStack, workdir: Path, url: str, service_url: str) -> None:
    """The demo's shop backend at `url`, in front of the service at `service_url`."""
    port = url.rsplit(":", 1)[1]
    log = workdir / "shop-front.log"
    with log.open("wb") as output:
        front = subprocess.Popen(
            [sys.executable, "-m", "harness.shop_front", "--port", port, "--upstream", service_url],
            env={
                **os.environ,
                SECRET_VARIABLE: CUSTOMER_TOKEN_SECRET,
                HOOKS_SECRET_VARIABLE: SHOP_WEBHOOK_SECRET,
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    stack.callback(stop_process, front)
    wait_for_http(f"{url}/shop", "the shop backend", START_SECONDS, exited=front.poll, log=log)


MakeLiveShop = Callable[..., LiveShop]


@pytest.fixture
def make_live_shop(tmp_path: Path, mongodb_uri: str) -> Iterator[MakeLiveShop]:
    """Start a shop for this test: `make_live_shop(RESERVATION_HOLD_SECONDS="8")`."""
    with ExitStack() as stack:
        count = 0

        def make(named: bool = False, **env: str) -> LiveShop:
            nonlocal count
            count += 1
            workdir = tmp_path / f"shop-{count}"
            return start_live_shop(stack, workdir, mongodb_uri, named=named, **env)

        yield make


@pytest.fixture
def live_shop(make_live_shop: MakeLiveShop) -> LiveShop:
    return make_live_shop()


@pytest.fixture
def named_live_shop(make_live_shop: MakeLiveShop) -> LiveShop:
    """A live shop whose storefront asks for the buyer's name (the demo's shop backend)."""
    return make_live_shop(named=True)
