"""The Stripe simulator as the official `stripe` library sees it (sync and async clients)."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from stripe.params.checkout import SessionCreateParams

from harness.servers import free_port
from stripesim import SimSettings, create_sim_app, sign
from tests.stripe_fake import MakeStripeSim, SimRefused, StripeSim, serve, signed

SECRET = "whsec_test_secret"
SESSIONS = "/v1/checkout/sessions"


def session_params(**overrides: Any) -> SessionCreateParams:
    params: SessionCreateParams = {
        "mode": "payment",
        "success_url": "https://shop.test/done?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.test/cart",
        "client_reference_id": "default.Xk42",
        "customer_email": "buyer@example.com",
        "expires_at": int(time.time()) + 3600,
        "metadata": {"reservation_id": "default.Xk42", "cart": "tee-black:2,mug:1"},
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 2500,
                    "product_data": {"name": "Black tee"},
                },
                "quantity": 2,
            },
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 900,
                    "product_data": {"name": "Mug"},
                },
                "quantity": 1,
            },
        ],
    }
    params.update(overrides)  # type: ignore[typeddict-item]
    return params


# Sessions: create, retrieve, list, expire.


def test_a_session_is_created_as_stripe_would(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    session = client.v1.checkout.sessions.create(session_params())
    assert session.id.startswith("cs_test_")
    assert (session.object, session.status, session.payment_status) == (
        "checkout.session",
        "open",
        "unpaid",
    )
    assert session.url == f"{stripe_sim.url}/pay/{session.id}"
    assert (session.amount_total, session.amount_subtotal, session.currency) == (5900, 5900, "eur")
    assert session.client_reference_id == "default.Xk42"
    assert session.customer_email == "buyer@example.com"
    assert session.metadata is not None
    assert session.metadata.to_dict() == {
        "reservation_id": "default.Xk42",
        "cart": "tee-black:2,mug:1",
    }
    assert session.payment_intent is None
    assert session.livemode is False

    again = client.v1.checkout.sessions.retrieve(session.id)
    assert again.to_dict() == session.to_dict()
    items = client.v1.checkout.sessions.line_items.list(session.id)
    assert [(i.description, i.quantity, i.amount_total) for i in items.data] == [
        ("Black tee", 2, 5000),
        ("Mug", 1, 900),
    ]


def test_the_request_log_holds_the_decoded_params(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    client.v1.checkout.sessions.create(session_params(), {"idempotency_key": "cart-7f3a"})
    [logged] = stripe_sim.requests("POST", SESSIONS)
    assert logged["idempotency_key"] == "cart-7f3a"
    assert logged["stripe_version"] == stripe.api_version
    assert logged["status"] == 200
    params = logged["params"]
    assert params["line_items"][0] == {
        "price_data": {
            "currency": "eur",
            "unit_amount": "2500",
            "product_data": {"name": "Black tee"},
        },
        "quantity": "2",
    }
    assert params["metadata"] == {"reservation_id": "default.Xk42", "cart": "tee-black:2,mug:1"}
    stripe_sim.clear_requests()
    assert stripe_sim.requests() == []


def test_expanding_line_items_and_listing_by_payment_intent(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    first = client.v1.checkout.sessions.create(session_params())
    second = client.v1.checkout.sessions.create(session_params())
    expanded = client.v1.checkout.sessions.retrieve(first.id, {"expand": ["line_items"]})
    assert expanded.line_items is not None
    assert [item.quantity for item in expanded.line_items.data] == [2, 1]

    intent = stripe_sim.complete(second.id)["data"]["object"]["payment_intent"]
    listed = client.v1.checkout.sessions.list({"payment_intent": intent})
    assert [s.id for s in listed.data] == [second.id]
    everything = client.v1.checkout.sessions.list({"limit": 1})
    assert everything.has_more
    assert [s.id for s in everything.auto_paging_iter()] == [second.id, first.id]


def test_pages_before_and_after_an_id(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    ids = [client.v1.checkout.sessions.create(session_params()).id for _ in range(4)][::-1]
    after = client.v1.checkout.sessions.list({"starting_after": ids[0], "limit": 2})
    assert ([s.id for s in after.data], after.has_more) == (ids[1:3], True)
    before = client.v1.checkout.sessions.list({"ending_before": ids[3], "limit": 2})
    assert ([s.id for s in before.data], before.has_more) == (ids[1:3], True)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.list({"limit": 101})
    assert refused.value.param == "limit"


async def test_async_client_creates_and_expires_a_session(stripe_sim: StripeSim) -> None:
    async with stripe_sim.async_client() as client:
        session = await client.v1.checkout.sessions.create_async(session_params())
        expired = await client.v1.checkout.sessions.expire_async(session.id)
        assert (expired.id, expired.status, expired.url) == (session.id, "expired", None)
        with pytest.raises(stripe.InvalidRequestError) as refused:
            await client.v1.checkout.sessions.expire_async(session.id)
    assert refused.value.http_status == 400
    assert "Only Checkout Sessions with a status in" in refused.value.user_message
    assert "has a status of `expired`" in refused.value.user_message
    [event] = stripe_sim.events("checkout.session.expired")
    assert event["data"]["object"]["id"] == session.id
    assert event["request"]["idempotency_key"] is not None


def test_a_completed_session_cannot_be_expired(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    session = client.v1.checkout.sessions.create(session_params())
    stripe_sim.complete(session.id)
    with pytest.raises(stripe.InvalidRequestError, match="status of `complete`"):
        client.v1.checkout.sessions.expire(session.id)


def test_an_unknown_session_is_404(stripe_sim: StripeSim) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_sim.client().v1.checkout.sessions.retrieve("cs_test_nope")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    assert "No such checkout.session: 'cs_test_nope'" in missing.value.user_message


# Validation: refused as Stripe refuses, naming the param.


@pytest.mark.parametrize(
    ("offset_seconds", "message"),
    [
        (10 * 60, "at least 30 minutes"),
        (25 * 3600, "less than 24 hours"),
        (-60, "at least 30 minutes"),
    ],
)
def test_expires_at_must_be_30_minutes_to_24_hours_away(
    stripe_sim: StripeSim, offset_seconds: int, message: str
) -> None:
    params = session_params(expires_at=int(time.time()) + offset_seconds)
    with pytest.raises(stripe.InvalidRequestError, match=message) as refused:
        stripe_sim.client().v1.checkout.sessions.create(params)
    assert (refused.value.http_status, refused.value.param) == (400, "expires_at")
    assert stripe_sim.state.sessions == {}


def test_expires_at_at_the_bounds_is_accepted(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    for offset in (30 * 60 + 5, 24 * 3600 - 5):
        expires_at = int(time.time()) + offset
        session = client.v1.checkout.sessions.create(session_params(expires_at=expires_at))
        assert session.expires_at == expires_at


def _line(**changes: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "price_data": {"currency": "eur", "unit_amount": 100, "product_data": {"name": "Tee"}},
        "quantity": 1,
    }
    line.update(changes)
    return line


@pytest.mark.parametrize(
    ("overrides", "param", "code"),
    [
        ({"mode": None}, "mode", "parameter_missing"),
        ({"mode": "donation"}, "mode", None),
        ({"success_url": None}, "success_url", "parameter_missing"),
        ({"success_url": "not a url"}, "success_url", "url_invalid"),
        ({"line_items": None}, "line_items", "parameter_missing"),
        (
            {"line_items": [_line(quantity=0)]},
            "line_items[0][quantity]",
            "parameter_invalid_integer",
        ),
        ({"line_items": [_line(quantity=None)]}, "line_items[0][quantity]", "parameter_missing"),
        (
            {"line_items": [_line(), _line(price_data={"currency": "eu", "unit_amount": 1})]},
            "line_items[1][price_data][product_data]",
            "parameter_missing",
        ),
        (
            {
                "line_items": [
                    _line(
                        price_data={
                            "currency": "e1r",
                            "unit_amount": 1,
                            "product_data": {"name": "x"},
                        }
                    )
                ]
            },
            "line_items[0][price_data][currency]",
            None,
        ),
        (
            {
                "line_items": [
                    _line(
                        price_data={
                            "currency": "eur",
                            "unit_amount": 1,
                            "product_data": {"nme": "x"},
                        }
                    )
                ]
            },
            "line_items[0][price_data][product_data][nme]",
            "parameter_unknown",
        ),
        (
            {"line_items": [_line(price="price_123", price_data=None)]},
            "line_items[0][price]",
            "resource_missing",
        ),
        ({"customer_email": "nobody"}, "customer_email", "email_invalid"),
        ({"metadata": {"k" * 41: "v"}}, "metadata", None),
    ],
)
def test_invalid_params_are_refused_naming_the_param(
    stripe_sim: StripeSim, overrides: dict[str, Any], param: str, code: str | None
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_sim.client().v1.checkout.sessions.create(session_params(**overrides))
    assert refused.value.http_status == 400
    assert (refused.value.param, refused.value.code) == (param, code)
    assert refused.value.error is not None
    assert refused.value.error.type == "invalid_request_error"


def test_currency_is_case_insensitive_and_answered_lowercase(stripe_sim: StripeSim) -> None:
    line = _line(price_data={"currency": "EUR", "unit_amount": 100, "product_data": {"name": "x"}})
    session = stripe_sim.client().v1.checkout.sessions.create(session_params(line_items=[line]))
    assert session.currency == "eur"


def test_unknown_urls_and_missing_keys_are_refused(make_stripe_sim: MakeStripeSim) -> None:
    sim = make_stripe_sim(api_key_prefix="sk_test_")
    answer = httpx.get(f"{sim.url}/v1/charges", headers={"Authorization": "Bearer sk_test_x"})
    assert answer.status_code == 404
    assert answer.json()["error"]["message"].startswith(
        "Unrecognized request URL (GET: /v1/charges)"
    )
    with pytest.raises(stripe.AuthenticationError, match="Invalid API Key"):
        sim.client(api_key="sk_live_nope").v1.checkout.sessions.list()
    missing = httpx.get(f"{sim.url}{SESSIONS}")
    assert missing.status_code == 401
    assert "You did not provide an API key" in missing.json()["error"]["message"]


# Idempotency: a key names one request for 24 hours.


def test_the_same_key_and_params_give_the_same_session(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    params = session_params()
    first = client.v1.checkout.sessions.create(params, {"idempotency_key": "reservation-1"})
    second = client.v1.checkout.sessions.create(params, {"idempotency_key": "reservation-1"})
    assert second.id == first.id
    assert second.to_dict() == first.to_dict()
    assert list(stripe_sim.state.sessions) == [first.id]
    assert first.last_response is not None
    assert second.last_response is not None
    replayed = second.last_response.headers
    assert replayed["Idempotent-Replayed"] == "true"
    assert replayed["Original-Request"] == first.last_response.request_id


async def test_the_same_key_with_other_params_is_an_idempotency_error(
    stripe_sim: StripeSim,
) -> None:
    async with stripe_sim.async_client() as client:
        await client.v1.checkout.sessions.create_async(
            session_params(), {"idempotency_key": "reservation-2"}
        )
        with pytest.raises(stripe.IdempotencyError) as refused:
            await client.v1.checkout.sessions.create_async(
                session_params(client_reference_id="other"), {"idempotency_key": "reservation-2"}
            )
    assert refused.value.http_status == 400
    assert "can only be used with the same parameters" in refused.value.user_message
    assert len(stripe_sim.state.sessions) == 1


def test_a_refused_request_does_not_use_up_its_key(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.create(
            session_params(expires_at=1), {"idempotency_key": "reservation-3"}
        )
    session = client.v1.checkout.sessions.create(
        session_params(), {"idempotency_key": "reservation-3"}
    )
    assert session.status == "open"


def test_keys_are_forgotten_after_24_hours(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    first = client.v1.checkout.sessions.create(session_params(), {"idempotency_key": "k-old"})
    later = time.time() + 25 * 3600
    stripe_sim.state.clock = lambda: later
    params = session_params(expires_at=int(later) + 3600, client_reference_id="other")
    second = client.v1.checkout.sessions.create(params, {"idempotency_key": "k-old"})
    assert second.id != first.id


# Refunds.


def _paid_intent(sim: StripeSim) -> str:
    session = sim.client().v1.checkout.sessions.create(session_params())
    intent: str = sim.complete(session.id)["data"]["object"]["payment_intent"]
    return intent


def test_refunds_are_idempotent_and_listed_by_payment_intent(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    intent = _paid_intent(stripe_sim)
    options: stripe.RequestOptions = {"idempotency_key": "refund-oversold-1"}
    refund = client.v1.refunds.create({"payment_intent": intent, "amount": 900}, options)
    again = client.v1.refunds.create({"payment_intent": intent, "amount": 900}, options)
    assert refund.id.startswith("re_")
    assert again.id == refund.id
    assert (refund.status, refund.amount, refund.payment_intent) == ("succeeded", 900, intent)
    rest = client.v1.refunds.create({"payment_intent": intent})
    assert rest.amount == 5000
    listed = client.v1.refunds.list({"payment_intent": intent})
    assert [r.id for r in listed.data] == [rest.id, refund.id]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create({"payment_intent": intent})
    assert refused.value.code == "charge_already_refunded"
    charges = [e["data"]["object"] for e in stripe_sim.events("charge.refunded")]
    assert [(c["amount_refunded"], c["refunded"]) for c in charges] == [(900, False), (5900, True)]


def test_refunding_an_unknown_or_unpaid_intent_is_refused(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.refunds.create({"payment_intent": "pi_unknown"})
    assert (unknown.value.http_status, unknown.value.code) == (400, "resource_missing")
    assert unknown.value.param == "payment_intent"
    session = client.v1.checkout.sessions.create(session_params())
    intent = stripe_sim.complete(session.id, "unpaid")["data"]["object"]["payment_intent"]
    with pytest.raises(stripe.InvalidRequestError, match="does not have a successful charge"):
        client.v1.refunds.create({"payment_intent": intent})
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create({"payment_intent": _paid_intent(stripe_sim), "amount": 10**6})
    assert too_much.value.code == "amount_too_large"


# Faults and the library's retries.


def _attempts(sim: StripeSim) -> list[dict[str, Any]]:
    return sim.requests("POST", SESSIONS)


def test_500s_are_retried_with_the_same_idempotency_key(stripe_sim: StripeSim) -> None:
    stripe_sim.fault(SESSIONS, "POST", "500", count=2)
    session = stripe_sim.client(max_network_retries=2).v1.checkout.sessions.create(session_params())
    attempts = _attempts(stripe_sim)
    assert [a["status"] for a in attempts] == [500, 500, 200]
    assert len({a["idempotency_key"] for a in attempts}) == 1
    assert list(stripe_sim.state.sessions) == [session.id]


async def test_500s_raise_api_error_when_retries_run_out(stripe_sim: StripeSim) -> None:
    stripe_sim.fault(SESSIONS, "POST", "500", count=None)
    async with stripe_sim.async_client(max_network_retries=1) as client:
        with pytest.raises(stripe.APIError) as failed:
            await client.v1.checkout.sessions.create_async(session_params())
    assert failed.value.http_status == 500
    assert [a["status"] for a in _attempts(stripe_sim)] == [500, 500]
    assert stripe_sim.state.sessions == {}


def test_a_client_without_max_network_retries_does_not_retry(stripe_sim: StripeSim) -> None:
    stripe_sim.fault(SESSIONS, "POST", "500")
    with pytest.raises(stripe.APIError):
        stripe_sim.client(max_network_retries=None).v1.checkout.sessions.create(session_params())
    assert len(_attempts(stripe_sim)) == 1


def test_429_is_not_retried_by_the_library_by_default(stripe_sim: StripeSim) -> None:
    stripe_sim.fault(SESSIONS, "POST", "429", retry_after=2)
    with pytest.raises(stripe.RateLimitError) as limited:
        stripe_sim.client(max_network_retries=2).v1.checkout.sessions.create(session_params())
    assert limited.value.http_status == 429
    assert limited.value.error is not None  # RateLimitError leaves .code unset
    assert limited.value.error.code == "rate_limit"
    assert limited.value.headers is not None
    assert limited.value.headers["Retry-After"] == "2"
    assert len(_attempts(stripe_sim)) == 1


async def test_429_with_stripe_should_retry_is_retried(stripe_sim: StripeSim) -> None:
    stripe_sim.fault(SESSIONS, "POST", "429", count=1, should_retry=True)
    async with stripe_sim.async_client(max_network_retries=2) as client:
        session = await client.v1.checkout.sessions.create_async(session_params())
    assert [a["status"] for a in _attempts(stripe_sim)] == [429, 200]
    assert list(stripe_sim.state.sessions) == [session.id]
    stripe_sim.fault(SESSIONS, "POST", "429", count=None, should_retry=True)
    with pytest.raises(stripe.RateLimitError):
        stripe_sim.client(max_network_retries=1).v1.checkout.sessions.create(session_params())


def test_a_500_with_should_retry_false_is_not_retried(stripe_sim: StripeSim) -> None:
    stripe_sim.fault(SESSIONS, "POST", "500", should_retry=False)
    with pytest.raises(stripe.APIError):
        stripe_sim.client(max_network_retries=2).v1.checkout.sessions.create(session_params())
    assert len(_attempts(stripe_sim)) == 1


def test_a_hang_makes_the_client_time_out(stripe_sim: StripeSim) -> None:
    stripe_sim.fault(SESSIONS, "POST", "hang")
    client = stripe_sim.client(timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError) as failed:
        client.v1.checkout.sessions.create(session_params())
    assert 0.4 < time.monotonic() - started < 5
    assert failed.value.should_retry
    assert stripe_sim.state.sessions == {}
    assert client.v1.checkout.sessions.create(session_params()).status == "open"


async def test_a_hang_is_retried_after_the_timeout(stripe_sim: StripeSim) -> None:
    stripe_sim.fault(SESSIONS, "POST", "hang")
    async with stripe_sim.async_client(timeout_seconds=0.3, max_network_retries=1) as client:
        session = await client.v1.checkout.sessions.create_async(session_params())
    assert list(stripe_sim.state.sessions) == [session.id]


def test_a_reset_connection_is_a_connection_error(stripe_sim: StripeSim) -> None:
    stripe_sim.fault(SESSIONS, "POST", "reset")
    with pytest.raises(stripe.APIConnectionError):
        stripe_sim.client().v1.checkout.sessions.create(session_params())
    assert stripe_sim.state.sessions == {}


def test_an_answer_lost_after_the_fact_is_replayed_on_retry(stripe_sim: StripeSim) -> None:
    stripe_sim.fault(SESSIONS, "POST", "reset_after")
    session = stripe_sim.client(max_network_retries=1).v1.checkout.sessions.create(session_params())
    assert list(stripe_sim.state.sessions) == [session.id]
    assert session.last_response is not None
    assert session.last_response.headers["Idempotent-Replayed"] == "true"


def test_faults_match_globs_and_can_be_cleared(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    session = client.v1.checkout.sessions.create(session_params())
    stripe_sim.fault(f"{SESSIONS}/*", "GET", "500", count=None)
    with pytest.raises(stripe.APIError):
        client.v1.checkout.sessions.retrieve(session.id)
    assert client.v1.checkout.sessions.expire(session.id).status == "expired"
    stripe_sim.clear_faults()
    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    refused = stripe_sim.http.post("/_sim/faults", json={"path": SESSIONS, "mode": "teapot"})
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "mode")


def test_faults_from_python_on_the_state(stripe_sim: StripeSim) -> None:
    stripe_sim.state.add_fault(SESSIONS, "POST", "500", count=1)
    with pytest.raises(stripe.APIError):
        stripe_sim.client().v1.checkout.sessions.create(session_params())
    assert stripe_sim.state.faults.pending() == []


# Events from the buyer/bank/merchant controls.


def _event_shape(event: dict[str, Any], type_: str) -> dict[str, Any]:
    assert event["id"].startswith("evt_")
    assert event["object"] == "event"
    assert event["type"] == type_
    assert event["api_version"] == stripe.api_version
    assert (event["livemode"], event["pending_webhooks"]) == (False, 1)
    assert isinstance(event["created"], int)
    obj: dict[str, Any] = event["data"]["object"]
    return obj


def test_a_paid_completion(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    session = client.v1.checkout.sessions.create(session_params())
    event = stripe_sim.complete(session.id, "paid")
    completed = _event_shape(event, "checkout.session.completed")
    assert (completed["status"], completed["payment_status"]) == ("complete", "paid")
    assert completed["metadata"]["reservation_id"] == "default.Xk42"
    intent = client.v1.payment_intents.retrieve(completed["payment_intent"])
    assert (intent.status, intent.amount_received) == ("succeeded", 5900)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"
    assert stripe_sim.events() == [event]
    with pytest.raises(SimRefused) as refused:
        stripe_sim.complete(session.id)
    assert refused.value.status == 400


def test_a_delayed_payment_that_succeeds_or_fails(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    for succeeded, type_, status in [
        (True, "checkout.session.async_payment_succeeded", "paid"),
        (False, "checkout.session.async_payment_failed", "unpaid"),
    ]:
        session = client.v1.checkout.sessions.create(session_params())
        completed = _event_shape(
            stripe_sim.complete(session.id, "unpaid"), "checkout.session.completed"
        )
        assert completed["payment_status"] == "unpaid"
        settled = _event_shape(stripe_sim.async_payment(session.id, succeeded), type_)
        assert settled["payment_status"] == status
        intent = client.v1.payment_intents.retrieve(settled["payment_intent"])
        assert intent.status == ("succeeded" if succeeded else "requires_payment_method")


def test_no_payment_required_has_no_payment_intent(stripe_sim: StripeSim) -> None:
    session = stripe_sim.client().v1.checkout.sessions.create(session_params())
    completed = stripe_sim.complete(session.id, "no_payment_required")["data"]["object"]
    assert (completed["payment_status"], completed["payment_intent"]) == (
        "no_payment_required",
        None,
    )


def test_expiry_declines_and_refunds(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    session = client.v1.checkout.sessions.create(session_params())
    declined = _event_shape(
        stripe_sim.fail_session_payment(session.id), "payment_intent.payment_failed"
    )
    assert declined["last_payment_error"]["code"] == "card_declined"
    again = _event_shape(stripe_sim.fail_payment(declined["id"]), "payment_intent.payment_failed")
    assert again["id"] == declined["id"]
    expired = _event_shape(stripe_sim.expire(session.id), "checkout.session.expired")
    assert (expired["status"], expired["payment_intent"]) == ("expired", declined["id"])

    intent = _paid_intent(stripe_sim)
    charge = _event_shape(stripe_sim.refund_event(intent), "charge.refunded")
    assert (charge["object"], charge["payment_intent"], charge["refunded"]) == (
        "charge",
        intent,
        True,
    )
    assert charge["amount_refunded"] == charge["amount"] == 5900
    assert [r.amount for r in client.v1.refunds.list({"payment_intent": intent}).data] == [5900]


def test_open_sessions_past_expires_at_are_expired(stripe_sim: StripeSim) -> None:
    session = stripe_sim.client().v1.checkout.sessions.create(session_params())
    state = stripe_sim.state
    state.clock = lambda: time.time() + 2 * 3600
    [event] = state.expire_due()
    assert event["type"] == "checkout.session.expired"
    assert state.sessions[session.id]["status"] == "expired"
    with pytest.raises(SimRefused):
        stripe_sim.complete(session.id)


# Signatures and webhook delivery.


def test_signatures_are_accepted_by_the_library() -> None:
    payload = b'{"id": "evt_1", "object": "event"}'
    header = sign(payload, SECRET, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    # The library checks our signatures; the text of the body, as the service passes it (stripe
    # before 16 formats a bytes payload as "b'...'"). No tolerance for a header from 2023 (the
    # library's own generate_signature_header arrived in 15.6, after the stripe floor).
    text = payload.decode()
    assert stripe.WebhookSignature.verify_header(text, header, SECRET, tolerance=None)
    assert stripe.WebhookSignature.verify_header(text, sign(payload, SECRET), SECRET)
    with pytest.raises(stripe.SignatureVerificationError, match="No signatures found matching"):
        stripe.WebhookSignature.verify_header(text, sign(payload, "whsec_other"), SECRET)
    stale = sign(payload, SECRET, int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.WebhookSignature.verify_header(text, stale, SECRET, tolerance=300)


def test_signed_events_parse_into_stripe_objects(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    session = client.v1.checkout.sessions.create(session_params())
    body, headers = signed(stripe_sim.complete(session.id), SECRET)
    event = client.construct_event(body, headers["Stripe-Signature"], SECRET)
    assert event.type == "checkout.session.completed"
    completed = event.data.object
    assert isinstance(completed, stripe.checkout.Session)
    assert completed.id == session.id
    assert completed.metadata is not None
    assert completed.metadata.to_dict() == {
        "reservation_id": "default.Xk42",
        "cart": "tee-black:2,mug:1",
    }


class Receiver:
    """A webhook endpoint that verifies like the app and fails the first `failures` times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.events: list[stripe.Event] = []
        self.signatures: list[tuple[str, str]] = []  # (event id, Stripe-Signature) per attempt

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        event_id = json.loads(body)["id"]
        self.signatures.append((event_id, request.headers["stripe-signature"]))
        try:
            event = stripe.Webhook.construct_event(
                body, request.headers["stripe-signature"], SECRET
            )
        except stripe.SignatureVerificationError:
            return JSONResponse({"error": "invalid_signature"}, 400)
        if self.failures > 0:
            self.failures -= 1
            return JSONResponse({"error": "storage_unavailable"}, 503)
        self.events.append(event)
        return JSONResponse({"received": True})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])


def test_events_are_delivered_signed_and_retried(make_stripe_sim: MakeStripeSim) -> None:
    receiver = Receiver(failures=1)
    with serve(receiver.app()) as receiver_url:
        sim = make_stripe_sim(
            webhook_url=f"{receiver_url}/hook", webhook_secret=SECRET, webhook_retry_seconds=0.05
        )
        session = sim.client().v1.checkout.sessions.create(session_params())
        event = sim.complete(session.id)
        deliveries = sim.wait_for_deliveries(lambda found: any(d["ok"] for d in found))
    assert [(d["attempt"], d["status"], d["ok"]) for d in deliveries] == [
        (1, 503, False),
        (2, 200, True),
    ]
    assert {d["event_id"] for d in deliveries} == {event["id"]}
    [received] = receiver.events
    assert received.id == event["id"]
    assert received.type == "checkout.session.completed"


def test_delivery_gives_up_after_its_attempts(make_stripe_sim: MakeStripeSim) -> None:
    sim = make_stripe_sim(
        webhook_url=f"http://127.0.0.1:{free_port()}/hook",  # nobody listens there
        webhook_secret=SECRET,
        webhook_attempts=2,
        webhook_retry_seconds=0.01,
    )
    session = sim.client().v1.checkout.sessions.create(session_params())
    sim.expire(session.id)
    deliveries = sim.wait_for_deliveries(lambda found: len(found) == 2)
    assert [(d["attempt"], d["ok"]) for d in deliveries] == [(1, False), (2, False)]
    assert all(d["error"] for d in deliveries)


def every_copy_delivered(deliveries: list[dict[str, Any]], emitted: list[str]) -> bool:
    """Every copy the simulator sends of each emitted event has been taken."""
    copies = {d["event_id"]: d["copies"] for d in deliveries}
    taken = {(d["event_id"], d["copy"]) for d in deliveries if d["ok"]}
    return set(copies) == set(emitted) and len(taken) == sum(copies.values())


def test_delivery_chaos_duplicates_delays_and_reorders(make_stripe_sim: MakeStripeSim) -> None:
    receiver = Receiver(failures=0)
    with serve(receiver.app()) as receiver_url:
        sim = make_stripe_sim(
            webhook_url=f"{receiver_url}/hook",
            webhook_secret=SECRET,
            duplicate_share=0.5,
            delivery_delay_seconds=0.5,
            chaos_seed=7,
        )
        client = sim.client()
        emitted = [
            sim.expire(client.v1.checkout.sessions.create(session_params()).id)["id"]
            for _ in range(30)
        ]
        deliveries = sim.wait_for_deliveries(lambda found: every_copy_delivered(found, emitted))
    received = [event.id for event in receiver.events]
    copies = Counter(received)
    assert set(copies) == set(emitted)
    assert set(copies.values()) == {1, 2}  # some twice, the rest once
    assert 5 <= sum(1 for n in copies.values() if n == 2) <= 25
    firsts = list(dict.fromkeys(received))
    assert firsts != emitted  # delays put them out of order
    assert all(d["ok"] for d in deliveries)


def test_every_attempt_is_signed_afresh(make_stripe_sim: MakeStripeSim) -> None:
    # Two copies of every event at once, and a failure to retry within the second: as Stripe
    # signs each attempt anew, no two attempts of an event carry the same timestamp.
    receiver = Receiver(failures=1)
    with serve(receiver.app()) as receiver_url:
        sim = make_stripe_sim(
            webhook_url=f"{receiver_url}/hook",
            webhook_secret=SECRET,
            duplicate_share=1.0,
            webhook_retry_seconds=0.01,
        )
        client = sim.client()
        emitted = [
            sim.expire(client.v1.checkout.sessions.create(session_params()).id)["id"]
            for _ in range(2)
        ]
        deliveries = sim.wait_for_deliveries(lambda found: every_copy_delivered(found, emitted))
    assert len(deliveries) == len(receiver.signatures) == 5  # one failed, tried again
    stamps: dict[str, set[str]] = {}
    for event, signature in receiver.signatures:
        stamps.setdefault(event, set()).add(signature.partition(",")[0])
    assert sorted(len(found) for found in stamps.values()) == [2, 3]


def test_api_latency_is_added_to_every_answer(make_stripe_sim: MakeStripeSim) -> None:
    sim = make_stripe_sim(latency_seconds=(0.2, 0.3), chaos_seed=1)
    client = sim.client()
    started = time.monotonic()
    client.v1.checkout.sessions.create(session_params())
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(
    "settings",
    [
        {"duplicate_share": 1.5},
        {"delivery_delay_seconds": -1},
        {"latency_seconds": (0.5, 0.1)},
    ],
)
def test_chaos_settings_are_checked(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"share|delays"):
        SimSettings(**settings)


def test_settings_need_a_secret_with_a_webhook_url() -> None:
    with pytest.raises(ValueError, match="secret"):
        create_sim_app(SimSettings(webhook_url="http://127.0.0.1:1/hook"))


# The pay page.


def test_the_pay_page_pays_or_cancels(stripe_sim: StripeSim) -> None:
    client = stripe_sim.client()
    paid = client.v1.checkout.sessions.create(session_params())
    page = stripe_sim.http.get(f"/pay/{paid.id}")
    assert page.status_code == 200
    assert "Black tee" in page.text
    assert 'value="pay"' in page.text
    answer = stripe_sim.http.post(f"/pay/{paid.id}", data={"action": "pay"})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"https://shop.test/done?session={paid.id}"
    assert client.v1.checkout.sessions.retrieve(paid.id).payment_status == "paid"

    cancelled = client.v1.checkout.sessions.create(session_params())
    answer = stripe_sim.http.post(f"/pay/{cancelled.id}", data={"action": "cancel"})
    assert answer.headers["location"] == "https://shop.test/cart"
    assert client.v1.checkout.sessions.retrieve(cancelled.id).status == "expired"
    assert 'value="pay"' not in stripe_sim.http.get(f"/pay/{cancelled.id}").text
    assert stripe_sim.http.get("/pay/cs_test_nope").status_code == 404
