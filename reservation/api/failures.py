"""The one place where errors become HTTP answers: {"error", "message", "details"}."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from domain.errors import (
    CustomerTokenRequired,
    InvalidCustomerToken,
    PaymentProviderUnavailable,
    RateLimited,
    ReservationError,
    ScriptFailed,
)
from reservation.api.bodies import json_response
from reservation.api.schemas import ErrorBody

logger = logging.getLogger("reservation")

HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
# Answers that tell the client when to try again.
RETRY_STATUSES = frozenset({429, 503})
# Error answers may quote what a client sent: quote at most this much of any one value, so an
# answer's size never grows with the input.
MAX_ECHO = 200
MAX_ECHOED_ITEMS = 20
MAX_MESSAGE = 1000


def bounded(value: object, limit: int = MAX_ECHO) -> object:
    """`value` with every string cut to `limit` characters and every collection to a few items."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 1] + "…"
    if isinstance(value, dict):
        items = list(value.items())[:MAX_ECHOED_ITEMS]
        return {bounded(str(key)): bounded(item) for key, item in items}
    if isinstance(value, list | tuple | set | frozenset):
        return [bounded(item) for item in list(value)[:MAX_ECHOED_ITEMS]]
    if value is None or isinstance(value, bool | int | float):
        return value
    return bounded(str(value))


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, object] | None = None,
    retry_after: int = 1,
) -> Response:
    headers = {"Retry-After": str(retry_after)} if status_code in RETRY_STATUSES else None
    body = ErrorBody(
        code,
        str(bounded(message, MAX_MESSAGE)),
        {str(bounded(key)): bounded(value) for key, value in (details or {}).items()},
    )
    return json_response(body, status_code, headers)


def error_answer(exc: ReservationError) -> Response:
    """The answer to an error of the tree (also written by the server itself, before or
    without the app: reservation/server/deadlines.py)."""
    retry_after = 1
    if isinstance(exc, PaymentProviderUnavailable | RateLimited):
        retry_after = exc.retry_after
    response = error_response(exc.status_code, exc.code, exc.message, exc.details, retry_after)
    if isinstance(exc, InvalidCustomerToken | CustomerTokenRequired):
        # A 401 names the scheme of the credentials it asks for (RFC 9110 §11.6.1).
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def on_reservation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ReservationError)
    if isinstance(exc, ScriptFailed):
        # A bug, not an outage: Redis's words (and the traceback) go to the log, only
        # `internal_error` to the client.
        logger.error(
            "the %s script failed on %s %s: %s",
            exc.script,
            request.method,
            request.url.path,
            exc.script_message,
            exc_info=exc,
            extra={
                "method": request.method,
                "path": request.url.path,
                "outcome": "internal_error",
                "script": exc.script,
            },
        )
    return error_answer(exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "invalid_request")
    response = error_response(exc.status_code, code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def on_unexpected(request: Request, exc: Exception) -> Response:
    # With the traceback, to find the bug; the service's formatters (reservation/logs.py) blank
    # secrets and URL passwords an exception's text may quote. The answer says nothing of it.
    logger.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=exc,
        extra={"method": request.method, "path": request.url.path, "outcome": "internal_error"},
    )
    return error_response(500, "internal_error", "the server failed to answer this request")


def add_exception_handlers(app: Starlette) -> None:
    app.add_exception_handler(ReservationError, on_reservation_error)
    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(Exception, on_unexpected)
