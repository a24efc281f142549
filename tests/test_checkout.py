"""POST /v1/checkout against the Stripe simulator: parameters, one session, bounded failures."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import stripe

from domain import errors
from domain.reservations import CartLine, Reservation, ReservationStatus
from reservation.payments.sessions import session_expiry
from tests.shop import MakeShop, Shop


def error_of(response: object) -> tuple[int, str]:
    return response.status_code, response.json()["error"]  # type: ignore[attr-defined]


async def test_session_is_priced_from_the_catalog(shop: Shop) -> None:
    answer = await shop.checkout(("tee", 2), ("cap", 1), customer_email="buyer@example.com")
    assert answer.status_code == 201, answer.text
    view = answer.json()
    rid, session_id = view["reservation_id"], view["checkout_session_id"]
    assert view["url"].endswith(session_id)
    (created,) = shop.sim.requests("POST", "/v1/checkout/sessions")
    params = created["params"]
    assert params["mode"] == "payment"
    assert [
        (
            line["price_data"]["product_data"]["name"],
            int(line["price_data"]["unit_amount"]),
            int(line["quantity"]),
            line["price_data"]["currency"],
        )
        for line in params["line_items"]
    ] == [("Product tee", 2500, 2, "eur"), ("Product cap", 1200, 1, "eur")]
    assert params["client_reference_id"] == rid
    assert params["metadata"]["reservation_id"] == rid
    assert params["metadata"]["cart_0"] == "tee=2@2500,cap=1@1200"
    assert params["customer_email"] == "buyer@example.com"
    assert "{CHECKOUT_SESSION_ID}" in params["success_url"]
    assert created["idempotency_key"] == f"checkout-session-{rid}"
    expires_at = datetime.fromtimestamp(int(params["expires_at"]), UTC)
    now = datetime.now(UTC)
    assert now + timedelta(minutes=30) < expires_at < now + timedelta(hours=24)
    assert (await shop.reservation(rid))["checkout_session_id"] == session_id
    assert (await shop.product("tee"))["reserved"] == 2


async def test_checkout_of_a_reservation_twice_is_one_session(shop: Shop) -> None:
    rid = (await shop.api.reserve(("tee", 1))).json()["id"]
    first = await shop.checkout(reservation_id=rid)
    second = await shop.checkout(reservation_id=rid)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert len(shop.sim.requests("POST", "/v1/checkout/sessions")) == 1
    assert (await shop.product("tee"))["reserved"] == 1


async def test_checkout_refusals(shop: Shop) -> None:
    rid = (await shop.api.reserve(("tee", 1))).json()["id"]
    await shop.http.delete(f"/v1/reservations/{rid}")
    assert error_of(await shop.checkout(reservation_id=rid)) == (409, "reservation_not_held")
    missing = await shop.checkout(reservation_id="default.abcdefghijklmnopqrstuv")
    assert error_of(missing) == (404, "not_found")
    both = await shop.checkout(("tee", 1), reservation_id=rid)
    assert error_of(both) == (422, "invalid_request")
    assert error_of(await shop.checkout()) == (422, "invalid_request")
    assert error_of(await shop.checkout(("tee", 9))) == (409, "insufficient_stock")
    for email in ("not-an-email", "0@0", "a@b.", "a@.b"):  # Stripe refuses them all
        bad_email = await shop.checkout(("tee", 1), customer_email=email)
        assert error_of(bad_email) == (422, "invalid_request"), email
    assert shop.sim.requests("POST", "/v1/checkout/sessions") == []
    assert (await shop.product("tee"))["available"] == 5


async def assert_provider_failure_releases_the_hold(shop: Shop, attempts: int) -> None:
    started = time.monotonic()
    answer = await shop.checkout(("tee", 2))
    elapsed = time.monotonic() - started
    assert error_of(answer) == (503, "payment_provider_unavailable")
    assert int(answer.headers["retry-after"]) >= 1
    assert elapsed < 4.0 + 3.0  # the gate's bound (stripe_timeout_seconds) and some slack
    assert len(shop.sim.requests("POST", "/v1/checkout/sessions")) == attempts
    product = await shop.product("tee")
    assert (product["reserved"], product["available"]) == (0, 5)


async def test_stripe_500s_are_retried_then_503_and_the_hold_released(shop: Shop) -> None:
    shop.sim.fault("/v1/checkout/sessions", mode="500", count=None)
    await assert_provider_failure_releases_the_hold(shop, attempts=3)


async def test_stripe_429s_are_retried_then_503_and_the_hold_released(shop: Shop) -> None:
    shop.sim.fault("/v1/checkout/sessions", mode="429", count=None)
    await assert_provider_failure_releases_the_hold(shop, attempts=3)


async def test_a_hanging_stripe_is_given_up_within_the_bound(shop: Shop) -> None:
    shop.sim.fault("/v1/checkout/sessions", mode="hang", count=None)
    started = time.monotonic()
    answer = await shop.checkout(("tee", 2))
    assert error_of(answer) == (503, "payment_provider_unavailable")
    assert time.monotonic() - started < 4.0 + 3.0
    assert 1 <= len(shop.sim.requests("POST", "/v1/checkout/sessions")) <= 3
    assert (await shop.product("tee"))["available"] == 5


async def test_one_failure_then_success_is_one_session(shop: Shop) -> None:
    shop.sim.fault("/v1/checkout/sessions", mode="500", count=1)
    answer = await shop.checkout(("tee", 1))
    assert answer.status_code == 201
    requests = shop.sim.requests("POST", "/v1/checkout/sessions")
    assert len(requests) == 2
    assert len({r["idempotency_key"] for r in requests}) == 1


async def test_without_a_stripe_key_checkout_is_503(make_shop: MakeShop) -> None:
    shop = await make_shop(stripe_secret_key=None)
    await shop.api.put_product("tee", 5)
    assert error_of(await shop.checkout(("tee", 1))) == (503, "payment_provider_unavailable")
    assert (await shop.product("tee"))["available"] == 5


async def test_no_session_secret_makes_no_session_it_could_not_recognise(
    make_shop: MakeShop,
) -> None:
    shop = await make_shop(session_secrets=())
    await shop.api.put_product("tee", 5)
    refused = await shop.checkout(("tee", 1))
    assert error_of(refused) == (503, "payment_provider_unavailable")
    assert "RESERVATION_SESSION_SECRET" in refused.json()["message"]
    assert shop.sim.requests("POST", "/v1/checkout/sessions") == []
    assert (await shop.product("tee"))["available"] == 5


async def test_a_retried_checkout_later_gets_the_same_session(shop: Shop) -> None:
    import asyncio

    rid = (await shop.api.reserve(("tee", 1))).json()["id"]
    first = (await shop.checkout(reservation_id=rid)).json()
    # The first answer was lost before it was recorded here; the client retries a moment later.
    await shop.api.services.db["checkout_sessions"].delete_many({"reservation_id": rid})
    await asyncio.sleep(1.1)
    again = await shop.checkout(reservation_id=rid)
    assert again.status_code == 201, again.text
    assert again.json()["checkout_session_id"] == first["checkout_session_id"]
    created = shop.sim.requests("POST", "/v1/checkout/sessions")
    assert len(created) == 2
    assert created[0]["params"] == created[1]["params"]
    assert len(shop.sim.state.sessions) == 1
    assert (await shop.product("tee"))["reserved"] == 1


async def assert_refused_for_good(
    shop: Shop,
    answer: object,
    code: str,
    message: str = "The request was refused (simulated fault).",
) -> None:
    status, error = error_of(answer)
    assert (status, error) == (502, "payment_provider_refused")
    body = answer.json()  # type: ignore[attr-defined]
    assert body["message"] == "Stripe refused the Checkout Session: InvalidRequestError"
    assert body["details"] == {
        "stripe_status": 400,
        "stripe_type": "invalid_request_error",
        "stripe_code": code,
        "stripe_message": message,
        "stripe_param": None,
    }
    assert "retry-after" not in answer.headers  # type: ignore[attr-defined]
    # A refusal is final: asked once, not retried, and the units are back on sale.
    assert len(shop.sim.requests("POST", "/v1/checkout/sessions")) == 1
    product = await shop.product("tee")
    assert (product["reserved"], product["available"]) == (0, 5)


async def test_a_permanent_stripe_refusal_is_502_and_releases_the_hold(shop: Shop) -> None:
    shop.sim.fault(
        "/v1/checkout/sessions",
        mode="400",
        code="currency_not_supported",
        message="The currency provided (eur) is invalid for this account.",
    )
    answer = await shop.checkout(("tee", 2))
    await assert_refused_for_good(
        shop,
        answer,
        "currency_not_supported",
        "The currency provided (eur) is invalid for this account.",
    )


async def test_a_refusal_for_a_held_reservation_releases_it_too(shop: Shop) -> None:
    rid = (await shop.api.reserve(("tee", 2))).json()["id"]
    shop.sim.fault("/v1/checkout/sessions", mode="400", code="parameter_invalid_integer")
    answer = await shop.checkout(reservation_id=rid)
    await assert_refused_for_good(shop, answer, "parameter_invalid_integer")
    assert (await shop.reservation(rid))["status"] == "released"


async def test_a_cart_over_what_stripe_accepts_is_422_without_a_call(shop: Shop) -> None:
    await shop.api.put_product("gold", 5, price=99_999_999, currency="eur")
    before = await shop.product("gold")
    too_much = await shop.checkout(("gold", 2))
    assert error_of(too_much) == (422, "invalid_request")
    assert "999,999.99 EUR" in too_much.json()["message"]
    assert too_much.json()["details"]["amount_total"] == 199_999_998
    rid = (await shop.api.reserve(("gold", 2))).json()["id"]
    held = await shop.checkout(reservation_id=rid)
    assert error_of(held) == (422, "invalid_request")
    assert shop.sim.requests("POST", "/v1/checkout/sessions") == []
    # Bad input changes nothing: no hold for the cart, the held reservation stays held.
    assert (await shop.reservation(rid))["status"] == "held"
    assert (await shop.product("gold"))["reserved"] == before["reserved"] + 2
    one = await shop.checkout(("gold", 1))
    assert one.status_code == 201, one.text


async def test_zero_decimal_currencies_are_bounded_in_whole_units(shop: Shop) -> None:
    assert (await shop.api.put_product("yen", 5, price=50_000_000, currency="jpy")).is_success
    too_much = await shop.checkout(("yen", 2))
    assert error_of(too_much) == (422, "invalid_request")
    assert "100,000,000 JPY" in too_much.json()["message"]
    assert "99,999,999 JPY" in too_much.json()["message"]
    assert (await shop.checkout(("yen", 1))).status_code == 201
    assert (await shop.product("yen"))["reserved"] == 1


async def test_the_simulator_refuses_amounts_stripe_refuses(shop: Shop) -> None:
    client = shop.sim.client()
    params = {
        "mode": "payment",
        "success_url": "https://shop.example/ok",
        "line_items": [
            {
                "quantity": 2,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 99_999_999,
                    "product_data": {"name": "Gold"},
                },
            }
        ],
    }
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params)  # type: ignore[arg-type]
    assert refused.value.code == "amount_too_large"


def reservation_held_for(hours: float, created_at: datetime) -> Reservation:
    return Reservation(
        id="default.abcdefghijklmnopqrstuv",
        pool="default",
        status=ReservationStatus.HELD,
        items=(CartLine("tee", 1),),
        customer_id=None,
        expires_at=created_at + timedelta(hours=hours),
        created_at=created_at,
    )


@pytest.mark.parametrize(
    ("hold_hours", "session_after"),
    [
        (10 / 60, timedelta(minutes=10 + 32)),  # the hold's end + 30 min + a margin
        (23, timedelta(hours=23, minutes=32)),
        (23.75, timedelta(hours=24, minutes=-2)),  # capped inside Stripe's 24 hours
        (30, timedelta(hours=24, minutes=-2)),
    ],
)
def test_session_expiry_follows_the_hold_within_stripes_24_hours(
    hold_hours: float, session_after: timedelta
) -> None:
    created = datetime(2026, 11, 26, 12, tzinfo=UTC)
    reservation = reservation_held_for(hold_hours, created)
    assert session_expiry(reservation, created + timedelta(seconds=1)) == created + session_after


async def test_a_hold_of_nearly_a_day_gets_a_session_stripe_accepts(make_shop: MakeShop) -> None:
    shop = await make_shop(hold_seconds=23.75 * 3600)
    await shop.api.put_product("tee", 5)
    answer = await shop.checkout(("tee", 1))
    assert answer.status_code == 201, answer.text
    (created,) = shop.sim.requests("POST", "/v1/checkout/sessions")
    expires_at = datetime.fromtimestamp(int(created["params"]["expires_at"]), UTC)
    assert timedelta(hours=23, minutes=50) < expires_at - datetime.now(UTC) < timedelta(hours=24)


async def test_a_session_mongodb_did_not_record_is_expired_and_its_hold_released(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MongoDB dies between Stripe's answer and the insert: no sweeper could see that session.
    async def mongodb_gone(*_: object) -> None:
        raise errors.StorageUnavailable("MongoDB did not answer", backend="mongodb")

    monkeypatch.setattr(shop.api.services.checkouts, "add", mongodb_gone)
    rid = (await shop.api.reserve(("tee", 1))).json()["id"]
    answer = await shop.checkout(reservation_id=rid)

    assert error_of(answer) == (503, "storage_unavailable")
    assert len(shop.sim.requests("POST", "/v1/checkout/sessions")) == 1
    # Stripe was asked to expire that one session: nobody can pay it now.
    (expired,) = shop.sim.events("checkout.session.expired")
    session_id = expired["data"]["object"]["id"]
    assert expired["data"]["object"]["metadata"]["reservation_id"] == rid
    assert len(shop.sim.requests("POST", f"/v1/checkout/sessions/{session_id}/expire")) == 1
    assert (await shop.reservation(rid))["status"] == "released"
    assert (await shop.product("tee"))["reserved"] == 0
