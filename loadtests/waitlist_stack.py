"""The waiting list's part of a rehearsal (`python -m loadtests.run_flash_sale --waitlist`): the
shop's webhook receiver the service is pointed at, the lines closed once the sale is over, and
the wait until every event the lines made reached the shop."""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pymongo
import redis

from harness.servers import free_port, wait_for_http
from loadtests.sale_stack import Stack
from loadtests.shop_receiver import HOOKS_PATH, SECRET_VARIABLE
from reservation.core.keys import KeySpace

RECORD = "shop-events.jsonl"


def start_receiver(stack: Stack, args: argparse.Namespace) -> dict[str, str]:
    """Start the shop's receiver (loadtests/shop_receiver.py); the service's environment that
    points its webhooks there, with the run's offer time."""
    port = free_port()
    secret = secrets.token_urlsafe(32)
    record = stack.workdir / RECORD
    receiver = stack.start(
        "shop-receiver",
        [
            *(sys.executable, "-m", "loadtests.shop_receiver"),
            *("--port", str(port), "--record", str(record)),
        ],
        **{SECRET_VARIABLE: secret},
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(
        f"{url}/healthz",
        "the shop's receiver",
        60,
        exited=receiver.poll,
        log=stack.logs["shop-receiver"],
    )
    return {
        "RESERVATION_SHOP_WEBHOOK_URL": f"{url}{HOOKS_PATH}",
        "RESERVATION_SHOP_WEBHOOK_SECRET": secret,
        "RESERVATION_OUTBOX_INTERVAL_SECONDS": "0.5",
        "RESERVATION_OFFER_SECONDS": str(args.offer_seconds),
    }


def record_path(stack: Stack) -> Path:
    """Where the receiver writes what it got."""
    return stack.workdir / RECORD


def close_lines(stack: Stack, waitlist: bool = True) -> dict[str, int]:
    """With `waitlist`, the operator closes every SKU's waiting list (the sale is over): nobody
    is left waiting, so no lapse goes on handing units to buyers who have gone. SKU -> entries
    removed (printed)."""
    if not waitlist:
        return {}
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    removed: dict[str, int] = {}
    with httpx.Client(base_url=stack.service_url, headers=headers, timeout=60) as http:
        products = http.get("/v1/products")
        products.raise_for_status()
        for product in products.json()["data"]:
            answer = http.post(f"/v1/waitlist/{product['sku']}/close")
            answer.raise_for_status()
            removed[str(product["sku"])] = int(answer.json()["removed"])
    print("waiting lists closed:", removed, flush=True)
    return removed


def undelivered(stack: Stack) -> int:
    """Shop events not yet delivered: still in a pool's Redis outbox, or pending in MongoDB."""
    env = stack.env
    keys = KeySpace(env["RESERVATION_KEY_PREFIX"])
    cluster = env.get("REDIS_CLUSTER") == "1"
    client: Any = (redis.RedisCluster if cluster else redis.Redis).from_url(env["REDIS_URL"])
    mongo: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(env["MONGODB_URI"])
    try:
        pools = [raw.decode() for raw in client.smembers(keys.pools)]
        in_redis = sum(int(client.llen(keys.pool(pool).outbox)) for pool in pools)
        pending = mongo[env["MONGODB_DATABASE"]]["shop_events"].count_documents(
            {"state": "pending"}
        )
        return in_redis + int(pending)
    finally:
        client.close()
        mongo.close()


def wait_delivered(stack: Stack, waitlist: bool = True, timeout: float = 120.0) -> int:
    """With `waitlist`, wait (up to `timeout`) until every shop event was delivered; how many
    were not."""
    if not waitlist:
        return 0
    deadline = time.monotonic() + timeout
    while True:
        left = undelivered(stack)
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.5)
