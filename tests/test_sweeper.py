"""The sweeper: lapsed holds back in quiet pools, lapsed reservations' sessions expired once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from reservation.operations.sweeper import sweep
from tests.api import ADMIN_TOKEN
from tests.conftest import REDIS_URL, age_hold
from tests.shop import MakeShop, Shop


async def test_sweeper_expires_the_session_of_a_lapsed_reservation_once(shop: Shop) -> None:
    answer = await shop.checkout(("tee", 2))
    rid, session_id = answer.json()["reservation_id"], answer.json()["checkout_session_id"]
    kept = (await shop.checkout(("cap", 1))).json()["checkout_session_id"]
    services = shop.api.services
    await age_hold(services.redis, services.inventory.keys, rid)
    first, second = await sweep(services), await sweep(services)
    assert (first.reclaimed_holds, first.expired_sessions) == (1, 1)
    assert (second.reclaimed_holds, second.expired_sessions) == (0, 0)
    expires = shop.sim.requests("POST", f"/v1/checkout/sessions/{session_id}/expire")
    assert len(expires) == 1
    assert shop.sim.requests("POST", f"/v1/checkout/sessions/{kept}/expire") == []
    checkout = await services.checkouts.get(session_id)
    assert checkout is not None
    assert checkout.status.value == "expired"
    assert (await shop.product("tee"))["available"] == 5


async def test_concurrent_sweepers_expire_once(shop: Shop) -> None:
    rid = (await shop.checkout(("tee", 1))).json()["reservation_id"]
    services = shop.api.services
    await age_hold(services.redis, services.inventory.keys, rid)
    reports = await asyncio.gather(*(sweep(services) for _ in range(5)))
    assert sum(report.expired_sessions for report in reports) == 1
    assert len([r for r in shop.sim.requests("POST") if r["path"].endswith("/expire")]) == 1


async def test_a_session_completed_meanwhile_is_fine(shop: Shop) -> None:
    answer = await shop.checkout(("tee", 1))
    rid, session_id = answer.json()["reservation_id"], answer.json()["checkout_session_id"]
    shop.sim.complete(session_id, "paid")  # paid, but the webhook has not arrived yet
    services = shop.api.services
    await age_hold(services.redis, services.inventory.keys, rid)
    report = await sweep(services)
    assert report.expired_sessions == 0
    checkout = await services.checkouts.get(session_id)
    assert checkout is not None
    assert checkout.status.value == "complete"


async def test_stripe_down_leaves_the_session_for_the_next_pass(shop: Shop) -> None:
    answer = await shop.checkout(("tee", 1))
    rid, session_id = answer.json()["reservation_id"], answer.json()["checkout_session_id"]
    services = shop.api.services
    await age_hold(services.redis, services.inventory.keys, rid)
    shop.sim.fault(f"/v1/checkout/sessions/{session_id}/expire", mode="500", count=None)
    assert (await sweep(services)).expired_sessions == 0
    shop.sim.clear_faults()
    assert (await sweep(services)).expired_sessions == 1


async def test_background_sweeper_runs_when_enabled(make_shop: MakeShop) -> None:
    shop = await make_shop(sweep_seconds=0.2)
    await shop.api.put_product("tee", 5)
    answer = await shop.checkout(("tee", 1))
    rid, session_id = answer.json()["reservation_id"], answer.json()["checkout_session_id"]
    services = shop.api.services
    await age_hold(services.redis, services.inventory.keys, rid)
    # A pass every 0.2 s: waited for up to a generous 30 s (a busy machine slows each pass).
    deadline = asyncio.get_running_loop().time() + 30
    while not shop.sim.requests("POST", f"/v1/checkout/sessions/{session_id}/expire"):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert len(shop.sim.requests("POST", f"/v1/checkout/sessions/{session_id}/expire")) == 1


async def test_sweep_command(shop: Shop) -> None:
    rid = (await shop.checkout(("tee", 1))).json()["reservation_id"]
    services = shop.api.services
    await age_hold(services.redis, services.inventory.keys, rid)
    settings = services.settings
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "MONGODB_URI": settings.mongodb_uri or "",
        "MONGODB_DATABASE": settings.mongodb_database,
        "RESERVATION_KEY_PREFIX": settings.key_prefix,
        "RESERVATION_ADMIN_TOKEN": ADMIN_TOKEN,
        "STRIPE_SECRET_KEY": settings.stripe_secret_key or "",
        "STRIPE_API_BASE": shop.sim.url,
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "reservation", "sweep"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # The command restores nothing at start, so the lapsed hold is still there to reclaim.
    assert done.stdout.strip() == (
        "1 holds reclaimed, 1 sessions expired, 0 unrecorded sessions recovered,"
        " 0 refused refunds tried again"
    )
    assert (await shop.product("tee"))["available"] == 5
