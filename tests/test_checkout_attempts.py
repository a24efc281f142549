"""The write-ahead checkout attempt: a process that dies between Stripe and MongoDB leaves no
Checkout Session behind that nobody can expire."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import reservation.payments.session_maker
from domain.reservations import CartLine
from persistence.attempts import CheckoutAttempt
from reservation.operations.sweeper import sweep
from reservation.payments.sessions import idempotency_key, session_expiry
from reservation.usecases.checkout import CheckoutRequest
from tests.conftest import age_hold
from tests.shop import MakeShop, Shop

CREATE = ("POST", "/v1/checkout/sessions")


class Died(BaseException):
    """The process ended here: no `except Exception` below runs, nothing is cleaned up."""


@pytest.fixture(autouse=True)
def no_caller_left(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every attempt counts as one whose caller is gone, without waiting out the gate's bound.
    monkeypatch.setattr(reservation.payments.session_maker, "ATTEMPT_GRACE", timedelta(hours=-1))


async def attempts(shop: Shop) -> list[dict[str, Any]]:
    return await shop.api.services.db["checkout_attempts"].find({}).to_list()


async def die_after_stripe(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> str:
    """A checkout whose process dies once Stripe made the session, before MongoDB has it."""

    async def dies(*_: object) -> None:
        raise Died

    services = shop.api.services
    rid: str = (await shop.api.reserve(("tee", 2))).json()["id"]
    with monkeypatch.context() as patch:
        patch.setattr(services.checkouts, "add", dies)
        with pytest.raises(Died):
            await services.checkout.start(CheckoutRequest(reservation_id=rid))
    assert len(shop.sim.state.sessions) == 1
    assert await services.checkouts.get_by_reservation(rid) is None
    return rid


async def test_a_checkout_leaves_no_attempt_behind(shop: Shop) -> None:
    assert (await shop.checkout(("tee", 1))).status_code == 201
    assert await attempts(shop) == []


async def test_the_session_of_a_process_that_died_is_recovered_then_expired(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = await die_after_stripe(shop, monkeypatch)
    (attempt,) = await attempts(shop)
    assert attempt["idempotency_key"] == f"checkout-session-{rid}"
    services = shop.api.services

    # The hold still stands: the session is recorded and stays payable.
    first = await sweep(services)
    assert (first.recovered_sessions, first.expired_sessions) == (1, 0)
    created = shop.sim.requests(*CREATE)
    assert len(created) == 2
    assert created[0]["params"] == created[1]["params"]
    assert {request["idempotency_key"] for request in created} == {f"checkout-session-{rid}"}
    assert len(shop.sim.state.sessions) == 1  # Stripe handed back the one it made
    (session_id,) = shop.sim.state.sessions
    recorded = await services.checkouts.get_by_reservation(rid)
    assert recorded is not None
    assert (recorded.session_id, recorded.status.value) == (session_id, "open")
    assert await attempts(shop) == []
    # The buyer's retry gets that session, with no new call to Stripe.
    again = await shop.checkout(reservation_id=rid)
    assert again.json()["checkout_session_id"] == session_id
    assert len(shop.sim.requests(*CREATE)) == 2

    # Its hold lapses: the next sweep gives the units back and expires the session once.
    await age_hold(services.redis, services.inventory.keys, rid)
    second = await sweep(services)
    assert (second.reclaimed_holds, second.expired_sessions) == (1, 1)
    assert len(shop.sim.requests("POST", f"/v1/checkout/sessions/{session_id}/expire")) == 1
    assert (await shop.product("tee"))["available"] == 5


async def test_a_lapsed_hold_gets_its_unrecorded_session_expired_in_one_sweep(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = await die_after_stripe(shop, monkeypatch)
    services = shop.api.services
    await age_hold(services.redis, services.inventory.keys, rid)
    report = await sweep(services)
    assert (report.recovered_sessions, report.expired_sessions) == (1, 1)
    (session_id,) = shop.sim.state.sessions
    assert shop.sim.state.sessions[session_id]["status"] == "expired"
    recorded = await services.checkouts.get(session_id)
    assert recorded is not None
    assert recorded.status.value == "expired"
    assert await attempts(shop) == []


async def test_an_attempt_that_never_reached_stripe_is_made_then_expired(shop: Shop) -> None:
    services = shop.api.services
    rid = (await shop.api.reserve(("tee", 1))).json()["id"]
    held = await services.inventory.holds.get(rid)
    expires_at = session_expiry(held, datetime.now(UTC))
    await services.checkout.sessions.attempts.begin(
        CheckoutAttempt(
            reservation_id=rid,
            idempotency_key=idempotency_key(rid),
            params={
                "mode": "payment",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "eur",
                            "unit_amount": 2500,
                            "product_data": {"name": "tee"},
                        },
                    }
                ],
                "client_reference_id": rid,
                "expires_at": int(expires_at.timestamp()),
                "success_url": "http://127.0.0.1/ok",
            },
            session_expires_at=expires_at,
        )
    )
    await services.inventory.holds.release(rid)
    report = await sweep(services)
    assert (report.recovered_sessions, report.expired_sessions) == (1, 1)
    (session_id,) = shop.sim.state.sessions
    assert shop.sim.state.sessions[session_id]["status"] == "expired"
    assert await attempts(shop) == []


async def test_a_checkout_stripe_never_answered_is_settled_by_the_sweeper(shop: Shop) -> None:
    shop.sim.fault("/v1/checkout/sessions", mode="500", count=None)
    answer = await shop.checkout(("tee", 2))
    assert answer.status_code == 503
    # Stripe's outcome is unknown to the service: the attempt stays, the hold goes back.
    (attempt,) = await attempts(shop)
    rid = attempt["reservation_id"]
    assert (await shop.reservation(rid))["status"] == "released"
    # Stripe is back; whatever it made under the key (here: nothing yet) is made, then expired.
    shop.sim.clear_faults()
    report = await sweep(shop.api.services)
    assert (report.recovered_sessions, report.expired_sessions) == (1, 1)
    assert [s["status"] for s in shop.sim.state.sessions.values()] == ["expired"]
    assert await attempts(shop) == []


async def test_a_permanent_refusal_leaves_no_attempt(shop: Shop) -> None:
    shop.sim.fault("/v1/checkout/sessions", mode="400", count=None)
    answer = await shop.checkout(("tee", 1))
    assert answer.status_code == 502
    assert await attempts(shop) == []


async def test_an_attempt_past_its_session_expiry_is_dropped_without_a_call(shop: Shop) -> None:
    services = shop.api.services
    past = datetime.now(UTC) - timedelta(minutes=1)
    await services.checkout.sessions.attempts.begin(
        CheckoutAttempt("r-gone", "checkout-session-r-gone", {"mode": "payment"}, past)
    )
    report = await sweep(services)
    assert report.recovered_sessions == 0
    assert shop.sim.requests(*CREATE) == []
    assert await attempts(shop) == []


async def test_a_cart_checkout_records_its_attempt_under_the_reservation(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def dies(*_: object) -> None:
        raise Died

    services = shop.api.services
    monkeypatch.setattr(services.checkouts, "add", dies)
    with pytest.raises(Died):
        await services.checkout.start(CheckoutRequest(items=(CartLine("cap", 1),)))
    (attempt,) = await attempts(shop)
    (created,) = shop.sim.requests(*CREATE)
    assert created["idempotency_key"] == attempt["idempotency_key"]
    assert created["params"]["client_reference_id"] == attempt["reservation_id"]


async def test_a_checkout_the_gate_never_sent_leaves_no_attempt(make_shop: MakeShop) -> None:
    # One Stripe call a second, a bound of half a second, and Stripe hangs: the second
    # checkout waits for the gate's rate until its bound and is never sent, so there is
    # nothing of it to recover.
    shop = await make_shop(stripe_rate_per_second=1.0, stripe_timeout_seconds=0.5)
    await shop.api.put_product("tee", 5)
    shop.sim.fault("/v1/checkout/sessions", mode="hang", count=None)
    first, second = await asyncio.gather(shop.checkout(("tee", 1)), shop.checkout(("tee", 1)))
    assert (first.status_code, second.status_code) == (503, 503)
    sent = {r["params"]["client_reference_id"] for r in shop.sim.requests(*CREATE)}
    (attempt,) = await attempts(shop)
    assert sent == {attempt["reservation_id"]}  # only the one Stripe may have acted on stays
