"""DELETE /v1/reservations/{id} with a Checkout Session: the session is expired at Stripe first,
so the buyer can no longer pay for units that went back on sale."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from domain.statuses import CheckoutStatus
from reservation.operations.sweeper import sweep
from tests.shop import Shop
from tests.stripe_fake import SimRefused


async def checkout(shop: Shop, quantity: int = 2) -> tuple[str, str]:
    answer = await shop.checkout(("tee", quantity))
    assert answer.status_code == 201, answer.text
    return answer.json()["reservation_id"], answer.json()["checkout_session_id"]


async def session_status(shop: Shop, session_id: str) -> CheckoutStatus:
    checkout = await shop.api.services.checkouts.get(session_id)
    assert checkout is not None
    return checkout.status


async def test_release_expires_the_session_so_it_cannot_be_paid(shop: Shop) -> None:
    rid, session_id = await checkout(shop)
    released = await shop.http.delete(f"/v1/reservations/{rid}")
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "released"
    assert released.json()["checkout_session_id"] == session_id
    expires = shop.sim.requests("POST", f"/v1/checkout/sessions/{session_id}/expire")
    assert len(expires) == 1
    assert shop.sim.state.sessions[session_id]["status"] == "expired"
    assert await session_status(shop, session_id) is CheckoutStatus.EXPIRED
    assert (await shop.product("tee"))["available"] == 5
    with pytest.raises(SimRefused) as refused:
        shop.sim.complete(session_id, "paid")
    assert refused.value.status == 400
    # Releasing again changes nothing and asks Stripe nothing more.
    again = await shop.http.delete(f"/v1/reservations/{rid}")
    assert again.status_code == 200
    assert len(shop.sim.requests("POST", f"/v1/checkout/sessions/{session_id}/expire")) == 1


@pytest.mark.parametrize(
    ("mode", "level", "said"),
    [
        ("500", logging.WARNING, "could not expire"),  # Stripe unreachable (after retries)
        ("401", logging.ERROR, "refused to expire Checkout Session"),  # a revoked key
    ],
    ids=["unreachable", "refused"],
)
async def test_stripe_failing_the_expiry_releases_and_the_sweeper_expires_later(
    shop: Shop, caplog: pytest.LogCaptureFixture, mode: str, level: int, said: str
) -> None:
    """Down or refusing (no 500 either way): the units go back, the session stays open for the
    sweeper, and a log line says why."""
    rid, session_id = await checkout(shop)
    shop.sim.fault(f"/v1/checkout/sessions/{session_id}/expire", mode=mode, count=None)
    with caplog.at_level(logging.WARNING, logger="reservation"):
        released = await shop.http.delete(f"/v1/reservations/{rid}")
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "released"
    assert (await shop.product("tee"))["available"] == 5
    assert shop.sim.state.sessions[session_id]["status"] == "open"
    assert await session_status(shop, session_id) is CheckoutStatus.OPEN  # claim given back
    [line] = [r for r in caplog.records if said in r.getMessage()]
    assert line.levelno == level
    assert line.session_id == session_id  # type: ignore[attr-defined]
    assert mode != "401" or "AuthenticationError" in line.getMessage()
    shop.sim.clear_faults()
    assert (await sweep(shop.api.services)).expired_sessions == 1
    assert shop.sim.state.sessions[session_id]["status"] == "expired"
    assert await session_status(shop, session_id) is CheckoutStatus.EXPIRED


async def test_a_paid_session_is_not_released(shop: Shop) -> None:
    rid, session_id = await checkout(shop)
    paid = shop.sim.complete(session_id, "paid")  # paid; the webhook is still on its way
    refused = await shop.http.delete(f"/v1/reservations/{rid}")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "already_committed"
    assert refused.json()["details"]["checkout_session_id"] == session_id
    assert (await shop.reservation(rid))["status"] == "held"
    assert await session_status(shop, session_id) is CheckoutStatus.COMPLETE
    assert (await shop.deliver(paid)).status_code == 200
    product = await shop.product("tee")
    assert (product["reserved"], product["sold"]) == (0, 2)
    assert shop.sim.requests("POST", "/v1/refunds") == []


async def test_release_without_a_session_asks_stripe_nothing(shop: Shop) -> None:
    rid = (await shop.api.reserve(("tee", 1))).json()["id"]
    released = await shop.http.delete(f"/v1/reservations/{rid}")
    assert released.status_code == 200
    assert released.json()["checkout_session_id"] is None
    assert shop.sim.requests("POST") == []


async def test_an_expiry_refused_while_the_session_stays_open_is_tried_again(shop: Shop) -> None:
    rid, session_id = await checkout(shop)
    shop.sim.fault(f"/v1/checkout/sessions/{session_id}/expire", mode="400", code="odd_refusal")
    released = await shop.http.delete(f"/v1/reservations/{rid}")
    assert released.status_code == 200, released.text
    assert shop.sim.state.sessions[session_id]["status"] == "open"
    assert await session_status(shop, session_id) is CheckoutStatus.OPEN  # not marked expired
    assert (await sweep(shop.api.services)).expired_sessions == 1
    assert shop.sim.state.sessions[session_id]["status"] == "expired"


async def held(shop: Shop) -> str:
    answer = await shop.api.reserve(("tee", 2))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def test_a_release_while_the_session_is_being_made_expires_it_at_once(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DELETE runs after Stripe made the session and before checkout recorded it: the release
    finds no session to expire; the checkout, reading the hold after recording its session,
    expires it at once (not at the sweeper's next pass) and answers 409."""
    rid = await held(shop)
    checkouts = shop.api.services.checkouts
    add = checkouts.add
    deleted: list[int] = []

    async def add_after_a_delete(record: Any) -> Any:
        deleted.append((await shop.http.delete(f"/v1/reservations/{rid}")).status_code)
        return await add(record)

    monkeypatch.setattr(checkouts, "add", add_after_a_delete)
    answer = await shop.checkout(reservation_id=rid)
    assert deleted == [200]
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"] == "reservation_not_held"
    (made,) = shop.sim.state.sessions
    assert shop.sim.state.sessions[made]["status"] == "expired"
    assert await session_status(shop, made) is CheckoutStatus.EXPIRED
    assert (await shop.reservation(rid))["status"] == "released"
    assert (await shop.product("tee"))["available"] == 5


async def test_a_session_recorded_while_a_release_runs_is_expired_by_the_release(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: DELETE read no session, then a whole checkout ran (the hold was still
    held when it looked), then DELETE released: it reads again and expires the session."""
    rid = await held(shop)
    checkouts = shop.api.services.checkouts
    get_by_reservation = checkouts.get_by_reservation
    interleaved: list[int] = []

    async def stale_read_around_a_checkout(reservation_id: str) -> Any:
        if interleaved:
            return await get_by_reservation(reservation_id)
        interleaved.append(0)
        seen = await get_by_reservation(reservation_id)
        interleaved[0] = (await shop.checkout(reservation_id=rid)).status_code
        return seen

    monkeypatch.setattr(checkouts, "get_by_reservation", stale_read_around_a_checkout)
    released = await shop.http.delete(f"/v1/reservations/{rid}")
    assert interleaved == [201]
    assert released.status_code == 200, released.text
    (made,) = shop.sim.state.sessions
    assert released.json()["checkout_session_id"] == made
    assert shop.sim.state.sessions[made]["status"] == "expired"
    assert await session_status(shop, made) is CheckoutStatus.EXPIRED
    assert (await shop.product("tee"))["available"] == 5
