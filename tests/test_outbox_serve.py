"""The shop's webhooks through `reservation serve` as real processes: a worker SIGKILLed while
the shop holds its delivery open loses nothing; the next process delivers the event."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pymongo
import redis

from domain.rules import DEFAULT_POOL
from harness.shop_hooks import ShopHooks
from reservation.core.keys import KeySpace
from reservation.lua.outbox_entry import decode
from tests.api import ADMIN
from tests.conftest import REDIS_URL
from tests.server import Server, forget_run, start_server
from tests.stripe_fake import serve

SECRET = "shop-webhook-secret-of-the-serve-test-0123456789"
DEADLINE = 90.0  # generous: the lease (2 x (timeout + interval)) lapses first


def kill(server: Server) -> None:
    """SIGKILL the server and every process it started: nothing runs its shutdown."""
    process = psutil.Process(server.process.pid)
    for each in [*process.children(recursive=True), process]:
        each.kill()
    server.process.wait(timeout=30)


def wait_until(check: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"not within {DEADLINE:g} s: {what}"
        time.sleep(0.05)


def test_a_worker_sigkilled_mid_delivery_loses_no_event(tmp_path: Path, mongodb_uri: str) -> None:
    hooks = ShopHooks(SECRET, hold_next=True)
    with serve(hooks.app()) as shop_url:
        env: dict[str, Any] = {
            "RESERVATION_SHOP_WEBHOOK_URL": f"{shop_url}/hooks",
            "RESERVATION_SHOP_WEBHOOK_SECRET": SECRET,
            "RESERVATION_SHOP_WEBHOOK_TIMEOUT_SECONDS": "2",
            "RESERVATION_OUTBOX_INTERVAL_SECONDS": "0.2",
        }
        first = start_server(tmp_path, mongodb_uri, **env)
        second: Server | None = None
        client = redis.Redis.from_url(REDIS_URL)
        try:
            product = {"name": "Tee", "price": 2500, "currency": "eur", "stock": 1}
            answer = httpx.put(f"{first.url}/v1/products/tee", json=product, headers=ADMIN)
            assert answer.status_code == 200, answer.text
            # An offer, as the waiting-list script appends it to the pool's outbox.
            now_ms = int(time.time() * 1000)
            text = f"1|{now_ms}|offer_created|{DEFAULT_POOL}.tok1|tee|1|{now_ms + 600_000}|alice"
            event_id = decode(text).event_id
            client.rpush(KeySpace(first.prefix).pool(DEFAULT_POOL).outbox, text)
            assert hooks.held.wait(DEADLINE), "the first server never delivered"
            kill(first)  # mid-delivery: the shop holds the request open
            hooks.release.set()
            assert hooks.taken_ids() == []
            # Another process on the same stores takes the lease once it lapses, and delivers.
            second = start_server(
                tmp_path,
                mongodb_uri,
                RESERVATION_KEY_PREFIX=first.prefix,
                MONGODB_DATABASE=first.database,
                **env,
            )
            wait_until(lambda: hooks.taken_ids() == [event_id], "the event delivered again")
            mongo: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(mongodb_uri)
            try:
                stored = mongo[first.database]["shop_events"]

                def delivered() -> bool:
                    document = stored.find_one({"event_id": event_id})
                    return document is not None and document["state"] == "delivered"

                wait_until(delivered, "the event marked delivered")
                assert stored.count_documents({}) == 1
            finally:
                mongo.close()
            assert hooks.arrived() == [event_id, event_id]  # the held try, then the one taken
            assert hooks.events[0]["data"]["customer_id"] == "alice"
            assert client.llen(KeySpace(first.prefix).pool(DEFAULT_POOL).outbox) == 0
            assert second is not None
            summary = httpx.get(f"{second.url}/v1/ops/summary", headers=ADMIN).json()
            shown = summary["shop_webhooks"]
            assert (shown["configured"], shown["pending"], shown["delivered"]) == (True, 0, 1)
            assert shown["oldest_pending_seconds"] is None
            metrics = httpx.get(f"{second.url}/metrics").text
            assert 'reservation_shop_webhook_deliveries_total{outcome="delivered"} 1.0' in metrics
        finally:
            hooks.release.set()
            client.close()
            for server in (first, second):
                if server is not None and server.process.poll() is None:
                    kill(server)
            forget_run(first.prefix, first.database, mongodb_uri)
