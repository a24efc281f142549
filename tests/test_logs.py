"""Logs a person can follow after a sale (reservation/logs.py): every money decision leaves a
line with its context, JSON lines parse one object each, a failed webhook keeps its reason,
and no secret or card field reaches a record or a formatted line."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from uvicorn.config import LOGGING_CONFIG

from reservation import logs
from reservation.env_readers import SettingsError
from reservation.settings import Settings
from tests.conftest import age_hold
from tests.server import start_server, stop_server
from tests.shop import WEBHOOK_SECRET, Shop
from tests.stripe_fake import API_KEY, signed, simulators

SECRETS = (API_KEY, WEBHOOK_SECRET)
# Card fields Stripe could send or a careless line could quote; this service never handles any.
CARD_FIELDS = ("last4", "cvc", "exp_month", "exp_year", "card[number]", "4242424242424242")
WEBHOOK_CONTEXT = {"event_id", "event_type", "outcome", "session_id", "reservation_id", "skus"}


@contextmanager
def formatted(log_format: str, logger: str = "") -> Iterator[io.StringIO]:
    """Every record reaching `logger` (the root: all of them) formatted as the service does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(log_format))
    target = logging.getLogger(logger or None)
    target.addHandler(handler)
    try:
        yield stream
    finally:
        target.removeHandler(handler)


async def checkout(shop: Shop, *items: tuple[str, int], status: int = 201) -> tuple[str, str]:
    answer = await shop.checkout(*items)
    assert answer.status_code == status, answer.text
    view = answer.json()
    return view.get("reservation_id", ""), view.get("checkout_session_id", "")


async def delivered(shop: Shop, event: dict[str, Any], status: int = 200) -> None:
    answer = await shop.deliver(event)
    assert answer.status_code == status, answer.text


async def a_sale(shop: Shop) -> None:
    """Every money decision once: paid (twice delivered), refunded, oversold and refunded by
    us, paid late, lapsed, a delayed payment that fails, Stripe down (503), rate limited and
    retried, Stripe refusing (502), a forged webhook."""
    services = shop.api.services
    await shop.api.put_product("mug", 5, price=900, currency="eur")

    _, paid_session = await checkout(shop, ("tee", 1))
    paid = shop.sim.complete(paid_session, "paid")
    await delivered(shop, paid)
    await delivered(shop, paid)  # duplicate
    order = await services.orders.get(paid_session)
    assert order is not None
    assert order.payment_intent is not None
    await delivered(shop, shop.sim.refund_event(order.payment_intent))

    late, late_session = await checkout(shop, ("mug", 4))
    await age_hold(services.redis, services.inventory.keys, late)
    await checkout(shop, ("mug", 3))  # the crowd takes the lapsed units
    await delivered(shop, shop.sim.complete(late_session, "paid"))  # oversold: refunded

    slow, slow_session = await checkout(shop, ("cap", 1))
    await age_hold(services.redis, services.inventory.keys, slow)
    await delivered(shop, shop.sim.complete(slow_session, "paid"))  # committed late

    _, expired_session = await checkout(shop, ("cap", 1))
    await delivered(shop, shop.sim.expire(expired_session))

    _, delayed_session = await checkout(shop, ("cap", 1))
    await delivered(shop, shop.sim.complete(delayed_session, "unpaid"))
    await delivered(shop, shop.sim.async_payment(delayed_session, succeeded=False))

    shop.sim.fault("/v1/checkout/sessions", mode="500", count=None)
    await checkout(shop, ("tee", 1), status=503)
    shop.sim.clear_faults()
    shop.sim.fault("/v1/checkout/sessions", mode="429", count=1)
    await checkout(shop, ("tee", 1))
    shop.sim.fault("/v1/checkout/sessions", mode="400", code="parameter_invalid_integer")
    await checkout(shop, ("tee", 1), status=502)

    forged, headers = signed(paid, "whsec_not_the_secret")
    answer = await shop.http.post("/v1/webhooks/stripe", content=forged, headers=headers)
    assert answer.status_code == 400


def record_texts(record: logging.LogRecord) -> list[str]:
    """All a record carries: its message, every attribute (args and extras), its traceback."""
    texts = [record.getMessage(), repr(record.__dict__)]
    if record.exc_info and record.exc_info[1] is not None:
        texts.append("".join(traceback.format_exception(record.exc_info[1])))
    return texts


def outcomes(records: list[logging.LogRecord], logger: str) -> set[str]:
    return {str(getattr(r, "outcome", "")) for r in records if r.name == logger} - {""}


async def test_no_secret_or_card_field_reaches_a_log_record(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with formatted("json") as json_lines, formatted("text") as text_lines:
        await a_sale(shop)

    # The sale was logged: every decision is there (else this test would prove nothing).
    assert outcomes(caplog.records, "reservation.webhooks") >= {
        "committed",
        "duplicate",
        "refunded",
        "refunded_oversold",
        "committed_late",
        "lapsed",
        "awaiting_payment",
        "payment_failed",
    }
    assert outcomes(caplog.records, "reservation.checkout") >= {
        "session_created",
        "stripe_unavailable",
        "stripe_refused",
    }
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("refund re_") and " issued for session " in m for m in messages)
    assert any("rate limited (attempt 1 of 3)" in m for m in messages)
    # The libraries' own DEBUG lines were captured too (stripe, httpx…).
    assert {record.name.split(".")[0] for record in caplog.records} > {"reservation"}

    texts = [text for record in caplog.records for text in record_texts(record)]
    texts += [json_lines.getvalue(), text_lines.getvalue(), caplog.text]
    for secret in SECRETS:
        assert not [text for text in texts if secret in text], secret
    for field in CARD_FIELDS:
        # As a word of its own: a random Stripe id may hold the letters (re_2FVcvc0U…).
        word = re.compile(rf"(?<![A-Za-z0-9]){re.escape(field)}(?![A-Za-z0-9])")
        assert not [text for text in texts if word.search(text)], field


async def test_json_lines_are_one_object_each_with_the_context(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with formatted("json", "reservation") as stream:
        _, session_id = await checkout(shop, ("tee", 2), ("cap", 1))
        paid = shop.sim.complete(session_id, "paid")
        await delivered(shop, paid)
        await delivered(shop, paid)

    lines = stream.getvalue().splitlines()
    records = [r for r in caplog.records if r.name.startswith("reservation")]
    assert len(lines) == len(records) == 3  # session created, committed, duplicate
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(line, dict) for line in parsed)
    for line in parsed:
        assert {"time", "level", "logger", "message"} <= set(line)
    created = next(line for line in parsed if line.get("outcome") == "session_created")
    assert created["session_id"] == session_id
    assert created["skus"] == ["cap", "tee"]
    assert (created["amount_total"], created["currency"]) == (2 * 2500 + 1200, "eur")
    assert created["reservation_id"].startswith("default.")
    webhook = [line for line in parsed if line["logger"] == "reservation.webhooks"]
    assert [line["outcome"] for line in webhook] == ["committed", "duplicate"]
    for line in webhook:
        assert set(line) >= WEBHOOK_CONTEXT
        assert (line["event_id"], line["event_type"]) == (paid["id"], paid["type"])
        assert (line["session_id"], line["reservation_id"]) == (
            session_id,
            created["reservation_id"],
        )
        assert line["level"] == "INFO"


async def test_a_failed_webhook_keeps_its_reason_and_logs_its_traceback(
    shop: Shop, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    handlers = shop.api.services.webhooks.payments
    _, session_id = await checkout(shop, ("tee", 1))
    paid = shop.sim.complete(session_id, "paid")

    async def broken(session: dict[str, Any], cart: object) -> str:
        raise RuntimeError("the bug")

    monkeypatch.setattr(handlers, "settle_payment", broken)
    with formatted("json", "reservation") as stream, pytest.raises(RuntimeError):
        await shop.deliver(paid)  # the in-process client re-raises what the server answered 500

    stored = await shop.api.services.events.get(paid["id"])
    assert stored is not None
    assert stored["exception"] == "RuntimeError: the bug"
    assert stored["processed_at"] is None  # Stripe's redelivery runs the handler again
    assert stored["failed_at"] >= stored["received_at"]
    parsed = [json.loads(line) for line in stream.getvalue().splitlines()]
    failed = next(line for line in parsed if line.get("outcome") == "failed")
    assert failed["level"] == "ERROR"
    assert failed["event_id"] == paid["id"]
    assert failed["session_id"] == session_id
    assert "Traceback" in failed["exc_info"]
    assert "RuntimeError: the bug" in failed["exc_info"]
    # The handler of unexpected errors logs the traceback too, not only the type.
    unexpected = next(line for line in parsed if line.get("outcome") == "internal_error")
    assert "RuntimeError: the bug" in unexpected["exc_info"]
    assert unexpected["path"] == "/v1/webhooks/stripe"

    monkeypatch.undo()
    await delivered(shop, paid)
    redelivered = await shop.api.services.events.get(paid["id"])
    assert redelivered is not None
    assert redelivered["outcome"] == "committed"
    assert redelivered["exception"] == "RuntimeError: the bug"  # the earlier try's, kept


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_formatters_blank_secrets_an_exception_quotes(log_format: str) -> None:
    settings = Settings(
        log_format=log_format,
        stripe_secret_key="sk_live_configured0001",
        stripe_webhook_secret="whsec_configured0002",
        admin_token="admin-token-0003",
    )
    options = dict(logs.log_config(settings, LOGGING_CONFIG)["formatters"]["service"])
    formatter = options.pop("()")(**options)
    leaked = (
        "mongodb://shop:hunter2@db:27017/shop, redis://:hunter3@cache:6379, admin-token-0003, "
        "sk_live_configured0001, rk_test_other0004, whsec_configured0002"
    )
    try:
        raise RuntimeError(f"cannot connect: {leaked}")
    except RuntimeError:
        record = logging.LogRecord(
            "reservation", logging.ERROR, __file__, 1, "failed: %s", (leaked,), None
        )
        record.exc_info = sys.exc_info()
    record.__dict__["reservation_id"] = "default.r1"
    line = formatter.format(record)

    for secret in ("hunter2", "hunter3", "0001", "0002", "0003", "0004"):
        assert secret not in line
    assert "mongodb://shop:[redacted]@db:27017" in line
    assert "reservation_id" in line
    assert "default.r1" in line
    if log_format == "json":
        assert json.loads(line)["reservation_id"] == "default.r1"
    else:
        assert "reservation_id=default.r1" in line.splitlines()[0]


def test_the_log_format_setting() -> None:
    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({"RESERVATION_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(SettingsError, match="RESERVATION_LOG_FORMAT"):
        Settings.from_env({"RESERVATION_LOG_FORMAT": "xml"})


def test_serve_writes_json_lines(tmp_path: Path, mongodb_uri: str) -> None:
    """`reservation serve` with RESERVATION_LOG_FORMAT=json: every log line is one object."""
    with simulators() as make_sim:
        sim = make_sim()
        server = start_server(
            tmp_path,
            mongodb_uri,
            RESERVATION_LOG_FORMAT="json",
            STRIPE_SECRET_KEY=API_KEY,
            STRIPE_API_BASE=sim.url,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        try:
            admin = {"Authorization": "Bearer test-admin-token"}
            product = {"name": "Tee", "price": 1500, "currency": "eur", "stock": 5}
            with httpx.Client(base_url=server.url, timeout=10) as http:
                assert http.put("/v1/products/tee", json=product, headers=admin).is_success
                body = {"items": [{"sku": "tee", "quantity": 1}]}
                assert http.post("/v1/checkout", json=body).status_code == 201
                sim.fault("/v1/checkout/sessions", mode="400", code="parameter_invalid_integer")
                assert http.post("/v1/checkout", json=body).status_code == 502
        finally:
            stop_server(server, mongodb_uri)
    port = server.url.rsplit(":", 1)[1]
    output = (tmp_path / f"server-{port}.log").read_text().splitlines()
    # What `serve` prints itself (click.echo) is not a log record; everything else is JSON.
    records = [json.loads(line) for line in output if not line.startswith("reservation: ")]
    assert all(isinstance(record, dict) for record in records)
    outcomes = {record.get("outcome") for record in records}
    assert {"session_created", "stripe_refused"} <= outcomes
    assert not [line for line in output if API_KEY in line or WEBHOOK_SECRET in line]
