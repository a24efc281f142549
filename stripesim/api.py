"""The Stripe API endpoints: form params in, Stripe's JSON (or Stripe's error) out."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from stripe.params import (
    PaymentIntentRetrieveParams,
    RefundCreateParams,
    RefundListParams,
    RefundRetrieveParams,
)
from stripe.params.checkout import (
    SessionCreateParams,
    SessionExpireParams,
    SessionLineItemListParams,
    SessionListParams,
    SessionRetrieveParams,
    SessionUpdateParams,
)

from stripesim import checkout, payments
from stripesim.errors import JsonObject, StripeError, no_such, unrecognized_url
from stripesim.faults import (
    ERROR_MODES,
    DroppedConnection,
    Fault,
    HangingResponse,
    error_for,
)
from stripesim.idempotency import Answer, fingerprint
from stripesim.params import Params, decode_form
from stripesim.schema import check_known
from stripesim.settings import SimSettings
from stripesim.state import SimState
from stripesim.store import Origin, new_id, page


@dataclass(frozen=True)
class Call:
    """One API request, decoded."""

    params: Params
    path: Mapping[str, str]
    now: float
    request_id: str
    idempotency_key: str | None
    public_url: str

    @property
    def origin(self) -> Origin:
        return Origin(self.request_id, self.idempotency_key)


Handler = Callable[[SimState, Call], JsonObject]


def stripe_json(
    body: JsonObject, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, indent=2),
        status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def error_response(error: StripeError, headers: Mapping[str, str]) -> Response:
    return stripe_json(error.body(), error.status, {**headers, **error.headers})


def authenticate(settings: SimSettings, authorization: str | None) -> None:
    """A secret key as Bearer (or Basic user), with the configured prefix if any."""
    scheme, _, credentials = (authorization or "").partition(" ")
    key = credentials.strip() if scheme.lower() == "bearer" else ""
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(credentials).decode().partition(":")[0]
        except ValueError:
            key = ""
    if not key:
        raise StripeError(
            401,
            "invalid_request_error",
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or "
            "we can help at https://support.stripe.com/.",
        )
    if settings.api_key_prefix is not None and not key.startswith(settings.api_key_prefix):
        raise StripeError(
            401, "invalid_request_error", f"Invalid API Key provided: {key[:8]}****{key[-4:]}"
        )


async def read_params(request: Request) -> dict[str, Any]:
    if request.method == "GET":
        return decode_form(request.url.query)
    try:
        text = (await request.body()).decode()
    except UnicodeDecodeError:
        raise StripeError(400, "invalid_request_error", "Invalid request body.") from None
    return decode_form(text)


def log_entry(
    state: SimState, request: Request, params: dict[str, Any], request_id: str
) -> JsonObject:
    entry: JsonObject = {
        "id": request_id,
        "method": request.method,
        "path": request.url.path,
        "params": params,
        "idempotency_key": request.headers.get("idempotency-key"),
        "stripe_version": request.headers.get("stripe-version"),
        "time": state.clock(),
        "status": None,
    }
    with state.lock:
        state.requests.append(entry)
    return entry


def run(state: SimState, handler: Handler, schema: type, call: Call, endpoint: str) -> Answer:
    """Check the params, run the handler, keep its answer under the Idempotency-Key."""
    key = call.idempotency_key if endpoint.startswith("POST ") else None
    with state.lock:
        if key is not None:
            previous = state.idempotency.replay(key, endpoint, call.params.data, call.now)
            if previous is not None:
                return previous
        check_known(call.params.data, schema)
        # A copy: the objects change later, and the answer is serialised outside the lock.
        body = copy.deepcopy(handler(state, call))
        answer = Answer(
            endpoint, fingerprint(call.params.data), 200, body, call.request_id, call.now
        )
        if key is not None:
            state.idempotency.remember(key, answer)
        return answer


def endpoint(handler: Handler, schema: type) -> Callable[[Request], Any]:
    async def respond(request: Request) -> Response:
        state: SimState = request.app.state.sim
        request_id = new_id("req", 14)
        headers = {"Request-Id": request_id, "Stripe-Version": state.settings.api_version}
        entry: JsonObject = {}
        try:
            params = await read_params(request)
            entry = log_entry(state, request, params, request_id)
            response = await answer(state, request, handler, schema, params, headers)
        except StripeError as error:
            response = error_response(error, headers)
        entry["status"] = response.status_code
        return response

    return respond


async def strike(state: SimState, fault: Fault, headers: dict[str, str]) -> Response | None:
    """What a fault answers instead of the API, if anything (a delay only waits)."""
    if fault.mode in ERROR_MODES:
        return error_response(error_for(fault), headers)
    if fault.mode == "reset":
        return DroppedConnection()
    if fault.mode == "hang":
        after = error_response(error_for(fault), headers)
        return HangingResponse(state.released, fault.seconds or state.settings.hang_seconds, after)
    if fault.mode == "delay":
        await asyncio.sleep(fault.seconds or 0)
    return None


async def answer(
    state: SimState,
    request: Request,
    handler: Handler,
    schema: type,
    params: dict[str, Any],
    headers: dict[str, str],
) -> Response:
    low, high = state.settings.latency_seconds
    if high > 0:
        await asyncio.sleep(state.random.uniform(low, high))
    fault = state.faults.take(request.method, request.url.path)
    if fault is not None and (struck := await strike(state, fault, headers)) is not None:
        return struck
    authenticate(state.settings, request.headers.get("authorization"))
    key = request.headers.get("idempotency-key")
    call = Call(
        Params(params),
        request.path_params,
        state.clock(),
        headers["Request-Id"],
        key,
        (state.settings.public_url or str(request.base_url)).rstrip("/"),
    )
    result = run(state, handler, schema, call, f"{request.method} {request.url.path}")
    if key is not None:
        headers["Idempotency-Key"] = key
    if result.request_id != call.request_id:
        headers.update({"Idempotent-Replayed": "true", "Original-Request": result.request_id})
    if fault is not None and fault.mode == "reset_after":
        return DroppedConnection()
    return stripe_json(result.body, result.status, headers)


# The endpoints. Each runs holding the state's lock.


def create_session(state: SimState, call: Call) -> JsonObject:
    session = checkout.create_session(state.store, call.params, call.now, call.public_url)
    return checkout.view(state.store, session, call.params.strings("expand"))


def list_sessions(state: SimState, call: Call) -> JsonObject:
    found = checkout.matching(state.store, call.params)
    return page(found, call.params, "/v1/checkout/sessions")


def get_session(state: SimState, call: Call) -> JsonObject:
    session = checkout.session(state.store, call.path["session"])
    return checkout.view(state.store, session, call.params.strings("expand"))


def update_session(state: SimState, call: Call) -> JsonObject:
    session = checkout.session(state.store, call.path["session"])
    checkout.update_metadata(session, call.params)
    return checkout.view(state.store, session, call.params.strings("expand"))


def expire_session(state: SimState, call: Call) -> JsonObject:
    session = checkout.session(state.store, call.path["session"])
    checkout.expire(state.store, session, call.now, call.origin)
    return checkout.view(state.store, session, call.params.strings("expand"))


def list_line_items(state: SimState, call: Call) -> JsonObject:
    session_id = call.path["session"]
    checkout.session(state.store, session_id)
    url = f"/v1/checkout/sessions/{session_id}/line_items"
    return page(state.store.line_items[session_id], call.params, url)


def create_refund(state: SimState, call: Call) -> JsonObject:
    emit = state.settings.refund_events
    return payments.create_refund(state.store, call.params, call.now, call.origin, emit)


def list_refunds(state: SimState, call: Call) -> JsonObject:
    return page(payments.matching_refunds(state.store, call.params), call.params, "/v1/refunds")


def get_refund(state: SimState, call: Call) -> JsonObject:
    refund = state.store.refunds.get(call.path["refund"])
    if refund is None:
        raise no_such("refund", call.path["refund"], "refund")
    return refund


def get_payment_intent(state: SimState, call: Call) -> JsonObject:
    return payments.payment_intent(state.store, call.path["intent"])


async def unrecognized(request: Request) -> Response:
    state: SimState = request.app.state.sim
    request_id = new_id("req", 14)
    try:
        entry = log_entry(state, request, await read_params(request), request_id)
    except StripeError:
        entry = {}
    entry["status"] = 404
    error = unrecognized_url(request.method, request.url.path)
    return error_response(error, {"Request-Id": request_id})


SESSIONS = "/v1/checkout/sessions"
TABLE: list[tuple[str, str, Handler, type]] = [
    ("POST", SESSIONS, create_session, SessionCreateParams),
    ("GET", SESSIONS, list_sessions, SessionListParams),
    ("GET", SESSIONS + "/{session}", get_session, SessionRetrieveParams),
    ("POST", SESSIONS + "/{session}", update_session, SessionUpdateParams),
    ("POST", SESSIONS + "/{session}/expire", expire_session, SessionExpireParams),
    ("GET", SESSIONS + "/{session}/line_items", list_line_items, SessionLineItemListParams),
    ("POST", "/v1/refunds", create_refund, RefundCreateParams),
    ("GET", "/v1/refunds", list_refunds, RefundListParams),
    ("GET", "/v1/refunds/{refund}", get_refund, RefundRetrieveParams),
    ("GET", "/v1/payment_intents/{intent}", get_payment_intent, PaymentIntentRetrieveParams),
]


def routes() -> list[BaseRoute]:
    """The API's routes; any other /v1 URL is answered as Stripe answers an unknown one."""
    table: list[BaseRoute] = [
        Route(path, endpoint(handler, schema), methods=[method])
        for method, path, handler, schema in TABLE
    ]
    table.append(
        Route("/v1/{rest:path}", unrecognized, methods=["GET", "POST", "DELETE", "PUT", "PATCH"])
    )
    return table
