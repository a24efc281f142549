"""`/_sim/…`: what tests and the load tester use to drive and inspect the simulator (JSON)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from stripesim.api import error_response, stripe_json
from stripesim.errors import JsonObject, StripeError, invalid
from stripesim.faults import Fault
from stripesim.state import SimState

Action = Callable[[SimState, Mapping[str, str], JsonObject], Any]


async def read_json(request: Request) -> JsonObject:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise invalid("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    return body


def control(action: Action) -> Callable[[Request], Any]:
    async def respond(request: Request) -> Response:
        try:
            body = await read_json(request)
            result = action(request.app.state.sim, request.path_params, body)
        except StripeError as error:
            return error_response(error, {})
        return stripe_json(result if isinstance(result, dict) else {"data": result})

    return respond


def _flag(body: JsonObject, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false", name)
    return value


def complete(state: SimState, path: Mapping[str, str], body: JsonObject) -> JsonObject:
    payment_status = body.get("payment_status", "paid")
    if not isinstance(payment_status, str):
        raise invalid("payment_status must be a string", "payment_status")
    return state.complete(path["session"], payment_status)


def async_payment(state: SimState, path: Mapping[str, str], body: JsonObject) -> JsonObject:
    return state.async_payment(path["session"], _flag(body, "succeeded", True))


def expire(state: SimState, path: Mapping[str, str], body: JsonObject) -> JsonObject:
    return state.expire(path["session"])


def fail_session_payment(state: SimState, path: Mapping[str, str], body: JsonObject) -> JsonObject:
    return state.fail_session_payment(path["session"])


def fail_payment(state: SimState, path: Mapping[str, str], body: JsonObject) -> JsonObject:
    return state.fail_payment(path["intent"])


def refund_event(state: SimState, path: Mapping[str, str], body: JsonObject) -> JsonObject:
    """A merchant's refund: in full, or `{"amount": N}` of it."""
    amount = body.get("amount")
    if amount is not None and (
        not isinstance(amount, int) or isinstance(amount, bool) or amount < 1
    ):
        raise invalid("amount must be a positive integer", "amount")
    return state.refund_event(path["intent"], amount)


def add_fault(state: SimState, path: Mapping[str, str], body: JsonObject) -> JsonObject:
    fault = Fault.from_json(body)
    state.faults.add(fault)
    return {"fault": fault.view(), "pending": state.faults.pending()}


def list_faults(state: SimState, path: Mapping[str, str], body: JsonObject) -> list[JsonObject]:
    return state.faults.pending()


def clear_faults(state: SimState, path: Mapping[str, str], body: JsonObject) -> JsonObject:
    state.clear_faults()
    return {"deleted": True}


async def list_requests(request: Request) -> Response:
    state: SimState = request.app.state.sim
    method = request.query_params.get("method")
    found = state.logged_requests(
        method.upper() if method else None, request.query_params.get("path")
    )
    return stripe_json({"data": found})


def clear_requests(state: SimState, path: Mapping[str, str], body: JsonObject) -> JsonObject:
    state.clear_requests()
    return {"deleted": True}


async def list_events(request: Request) -> Response:
    state: SimState = request.app.state.sim
    return stripe_json({"data": state.events(request.query_params.get("type"))})


def list_deliveries(state: SimState, path: Mapping[str, str], body: JsonObject) -> list[JsonObject]:
    with state.lock:
        return list(state.deliveries)


def routes() -> list[BaseRoute]:
    sessions = "/_sim/sessions/{session}"
    table: list[tuple[str, str, Action]] = [
        ("POST", sessions + "/complete", complete),
        ("POST", sessions + "/async_payment", async_payment),
        ("POST", sessions + "/expire", expire),
        ("POST", sessions + "/fail_payment", fail_session_payment),
        ("POST", "/_sim/payment_intents/{intent}/fail", fail_payment),
        ("POST", "/_sim/refund_event/{intent}", refund_event),
        ("POST", "/_sim/faults", add_fault),
        ("GET", "/_sim/faults", list_faults),
        ("DELETE", "/_sim/faults", clear_faults),
        ("DELETE", "/_sim/requests", clear_requests),
        ("GET", "/_sim/deliveries", list_deliveries),
    ]
    return [
        *(Route(path, control(action), methods=[method]) for method, path, action in table),
        Route("/_sim/requests", list_requests, methods=["GET"]),
        Route("/_sim/events", list_events, methods=["GET"]),
    ]
