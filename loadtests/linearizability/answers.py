"""One HTTP call of a recorded client, and what its answer means for the history: `ok` with the
result the checker must explain, `fail` (known not to have happened), or `unknown` (it may or
may not have happened), with the answer's fields in the shape loadtests/linearizability/
history.py gives each kind."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtests.linearizability.history import Outcome

# Refused before anything was held or changed: a bad request, a rate limit, a body refused
# before it was read.
FAILED_STATUSES = frozenset({408, 413, 415, 422, 429})


@dataclass(frozen=True)
class Answer:
    """A call's outcome, its HTTP status (None: none came), its JSON body, and when it came
    (monotonic; None: it never did)."""

    outcome: Outcome
    status: int | None
    body: Mapping[str, Any] = field(default_factory=dict)
    completed: float | None = None

    @property
    def error(self) -> str | None:
        value = self.body.get("error")
        return value if isinstance(value, str) else None


def outcome_of(status: int) -> Outcome:
    """5xx: unknown (a 503 while a store is down, a 500) - the service may have acted before it
    failed; the refusals before anything was done: fail; any other answer: ok."""
    if status >= 500:
        return Outcome.UNKNOWN
    if status in FAILED_STATUSES:
        return Outcome.FAIL
    return Outcome.OK


async def call(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    json: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """Make the call. A connection never made: fail (nothing was sent). A timeout or a
    connection cut off after the request left: unknown, never answered."""
    try:
        response = await http.request(method, path, json=json, headers=headers)
    except (httpx.ConnectError, httpx.ConnectTimeout):
        return Answer(Outcome.FAIL, None, {}, time.monotonic())
    except httpx.HTTPError:
        return Answer(Outcome.UNKNOWN, None)
    completed = time.monotonic()
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return Answer(outcome_of(response.status_code), response.status_code, body, completed)


def items_of(view: Mapping[str, Any]) -> list[list[Any]]:
    """A reservation view's lines as [[sku, quantity], ...]."""
    lines = view.get("items") or []
    return [[line["sku"], line["quantity"]] for line in lines if isinstance(line, dict)]


def reserve_result(answer: Answer) -> dict[str, Any]:
    ok = answer.status == 201
    details = answer.body.get("details")
    return {
        "status": answer.status,
        "error": answer.error,
        "id": answer.body.get("id") if ok else None,
        "state": answer.body.get("status") if ok else None,
        "details": details if isinstance(details, dict) else {},
    }


def release_result(answer: Answer) -> dict[str, Any]:
    ok = answer.status == 200
    return {
        "status": answer.status,
        "error": answer.error,
        "state": answer.body.get("status") if ok else None,
    }


def read_reservation_result(answer: Answer) -> dict[str, Any]:
    ok = answer.status == 200
    return {
        "status": answer.status,
        "error": answer.error,
        "state": answer.body.get("status") if ok else None,
        "items": items_of(answer.body) if ok else [],
    }


def read_product_result(answer: Answer) -> dict[str, Any]:
    ok = answer.status == 200
    return {
        "status": answer.status,
        "error": answer.error,
        **{
            name: answer.body.get(name) if ok else None
            for name in ("stock", "reserved", "sold", "available")
        },
    }


def checkout_result(answer: Answer) -> dict[str, Any]:
    ok = answer.status == 201
    return {
        "status": answer.status,
        "error": answer.error,
        "session": answer.body.get("checkout_session_id") if ok else None,
    }
