"""Reading request bodies (bounded, decoded and validated) and writing JSON answers."""

from __future__ import annotations

import logging
import re
from typing import Any, TypeVar

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from domain import errors
from reservation.api.bodybudget import BodyBudget
from reservation.api.client_address import client_address
from reservation.api.schemas import encoder

MAX_BODY_BYTES = 64 * 1024
logger = logging.getLogger("reservation.bodies")
DIGITS = re.compile(r"[0-9]{1,19}")
T = TypeVar("T")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refused with 413 past `limit` bytes without reading the rest, and with
    503 `server_busy` when the process's body budget cannot hold it (bodybudget.py).

    A body that stops coming is cut off by the server (reservation/server/deadlines.py, the body
    deadline): the app then hears that the client is gone, which is a 408 nobody reads, not a
    failure of the server.
    """
    declared = request.headers.get("content-length")
    budget: BodyBudget = request.app.state.bodies
    client = client_address(request, request.app.state.trusted_proxy_header)
    if declared is not None and DIGITS.fullmatch(declared):
        if int(declared) > limit:
            raise errors.PayloadTooLarge(
                f"request bodies are limited to {limit} bytes", limit=limit
            )
        if int(declared) > budget.free(client):
            raise _over_budget(request, client)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            if size + len(chunk) > limit:
                raise errors.PayloadTooLarge(
                    f"request bodies are limited to {limit} bytes", limit=limit
                )
            if not budget.take(len(chunk), client):
                raise _over_budget(request, client)
            size += len(chunk)
            chunks.append(chunk)
        return b"".join(chunks)
    except ClientDisconnect:
        raise errors.RequestTimeout("the request body did not arrive whole") from None
    finally:
        # However the read ended (whole, refused, the client gone, cancelled): a byte not
        # given back would shrink the budget for good.
        budget.give_back(size, client)


def _over_budget(request: Request, client: str) -> errors.ServerBusy:
    logger.warning(
        "503: request bodies at the budget (RESERVATION_MAX_BODY_BYTES_IN_FLIGHT) or at the"
        " client's share of it",
        extra={
            "method": request.method,
            "path": request.url.path,
            "client": client,
            "outcome": "body_budget",
        },
    )
    return errors.ServerBusy(
        "this process already holds as many request body bytes as it may; try again"
    )


def decode(raw: bytes, into: type[T]) -> T:
    """Decode and validate; every way a body can be wrong is InvalidRequest (422)."""
    try:
        return msgspec.json.decode(raw, type=into)
    except msgspec.ValidationError as exc:
        raise errors.InvalidRequest(f"invalid body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise errors.InvalidRequest(f"the body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        # msgspec checks UTF-8 inside strings itself, and lets Python's error through.
        raise errors.InvalidRequest("the body is not valid UTF-8") from None
    except RecursionError:
        raise errors.InvalidRequest("the body is nested too deeply") from None


JSON_MEDIA_TYPE = "application/json"


def require_json(request: Request) -> None:
    """Refuse (415) a request not declared `application/json`, before its body is read.

    An HTML form or a `no-cors` fetch on any site may post `text/plain`,
    `application/x-www-form-urlencoded`, `multipart/form-data` or no Content-Type at all
    without a CORS preflight; only a page of this origin, or a client that is not a browser,
    can send `application/json`. So a request without it is refused whatever its body (even
    none: every JSON route needs one). Parameters (`; charset=utf-8`) and case do not matter:
    the body is read as UTF-8 JSON whatever they say. A `+json` type is refused too: it names
    a format of its own (`application/merge-patch+json` is a patch, not the document).
    """
    # Two Content-Type fields contradict each other: refused, not one of them picked.
    declared = request.headers.getlist("content-type")
    if len(declared) == 1 and declared[0].partition(";")[0].strip().lower() == JSON_MEDIA_TYPE:
        return
    raise errors.UnsupportedMediaType(
        f"a request body must be sent with Content-Type: {JSON_MEDIA_TYPE}",
        content_type=", ".join(declared) or None,
    )


async def read_json(request: Request, into: type[T]) -> T:
    """Decode and validate a JSON body into a struct; any defect is a 4xx."""
    require_json(request)
    return decode(await read_body(request), into)


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        encoder.encode(body),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )
