"""The OpenAPI 3.1 document, generated from the app's own routes and the msgspec structs.

Each route of the API is an `Operation` (reservation/api/routes.py): the Starlette route the app
serves, carrying what the document says of it (summary, parameters, body, answer, the error
classes it may answer with). Schemas come from `msgspec.json.schema_components` over the
structs of reservation/schemas.py, so patterns, bounds and enums are the ones the code
validates with. docs/api.md says the same in prose.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from domain.errors import ReservationError, Unauthorized
from reservation import __version__
from reservation.api.schemas import ErrorBody

REF = "#/components/schemas/"
# A path parameter's Starlette convertor ("{customer_id:path}"): the document names the
# parameter alone.
CONVERTOR = re.compile(r"\{(\w+):\w+\}")
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Parameter:
    """A path, query or header parameter; `schema` is a type msgspec describes."""

    name: str
    where: Literal["path", "query", "header"]
    schema: Any
    required: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """The success answer: a JSON struct, or (with `body` None) a body of `media_type`."""

    status: int
    description: str
    body: Any = None
    media_type: str = "application/json"
    # Other success statuses with the same body (a join answered again: 200 beside 201).
    also: tuple[int, ...] = ()


class Operation(Route):
    """A route of the HTTP API and what the OpenAPI document says of it: one method each."""

    def __init__(
        self,
        method: str,
        path: str,
        endpoint: Handler,
        summary: str,
        *,
        answer: Answer,
        body: Any = None,
        body_required: bool = True,
        parameters: Sequence[Parameter] = (),
        errors: Sequence[type[ReservationError]] = (),
        admin: bool = False,
        customer: bool = False,
        or_admin: bool = False,
    ) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method.upper()
        self.summary = summary
        self.answer = answer
        self.body = body
        self.body_required = body_required
        self.parameters = tuple(parameters)
        # Admin routes refuse a missing or wrong token first.
        self.errors: tuple[type[ReservationError], ...] = (
            (Unauthorized, *errors) if admin else tuple(errors)
        )
        self.admin = admin
        # A buyer's route: it takes a customer token (reservation/customers/), optional;
        # `or_admin`: the admin token too, for anybody's (the admin's is tried first).
        self.customer = customer
        self.or_admin = or_admin
        self.document_path = CONVERTOR.sub(r"{\1}", path)
        declared = {p.name for p in parameters if p.where == "path"}
        if declared != set(self.param_convertors):
            raise ValueError(f"{method} {path}: path parameters {sorted(declared)} declared")


def operations(routes: Iterable[BaseRoute]) -> list[Operation]:
    """The app's operations; a route that is neither one nor left out of the schema is an
    error, so that every route the app serves is in the document."""
    found = []
    for route in routes:
        if isinstance(route, Operation):
            found.append(route)
        elif getattr(route, "include_in_schema", True):
            raise TypeError(f"{route!r} is served but not described: make it an Operation")
    return found


def openapi_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation among `routes`."""
    ops = operations(routes)
    # Every type the document names, described in one pass so that shared ones (ErrorBody,
    # the status enums) become one component each.
    types: list[Any] = [ErrorBody]
    for op in ops:
        types += [p.schema for p in op.parameters]
        types += [t for t in (op.body, op.answer.body) if t is not None]
    unique = list(dict.fromkeys(types))
    described, components = msgspec.json.schema_components(unique, ref_template=REF + "{name}")
    schema_of = dict(zip(unique, described, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.document_path, {})[op.method.lower()] = _operation(op, schema_of)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Stock reservation for Stripe Checkout",
            "version": __version__,
            "description": "The HTTP contract; docs/api.md in the repository says it in prose.",
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer"},
                "customerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "the buyer's token, signed by the shop: README, *Customer"
                    " tokens*. Required to name a customer_id once customer ids are verified",
                },
            },
        },
        "paths": paths,
    }


def _operation(op: Operation, schema_of: dict[Any, Any]) -> dict[str, Any]:
    endpoint = getattr(op.endpoint, "__name__", op.name)
    operation: dict[str, Any] = {"operationId": endpoint, "summary": op.summary}
    if op.admin:
        operation["security"] = [{"adminToken": []}]
    if op.customer:
        operation["security"] = [{}, {"customerToken": []}]  # anonymous, or a customer
        if op.or_admin:
            operation["security"].append({"adminToken": []})
    if op.parameters:
        operation["parameters"] = [_parameter(p, schema_of[p.schema]) for p in op.parameters]
    if op.body is not None:
        operation["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": schema_of[op.body]}},
        }
    answer = op.answer
    content_schema = schema_of[answer.body] if answer.body is not None else _untyped(answer)
    success: dict[str, Any] = {"description": answer.description}
    if answer.status != 204:  # No Content
        success["content"] = {answer.media_type: {"schema": content_schema}}
    responses: dict[str, Any] = {str(status): success for status in (answer.status, *answer.also)}
    for status, codes in _codes_by_status(op.errors).items():
        responses[str(status)] = _error_answer(status, codes)
    operation["responses"] = responses
    return operation


def _parameter(parameter: Parameter, schema: Any) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": parameter.name,
        "in": parameter.where,
        "required": parameter.required or parameter.where == "path",
        "schema": schema,
    }
    if parameter.description:
        described["description"] = parameter.description
    return described


def _untyped(answer: Answer) -> dict[str, Any]:
    return {"type": "object"} if answer.media_type == "application/json" else {"type": "string"}


def _codes_by_status(errors: Iterable[type[ReservationError]]) -> dict[int, list[str]]:
    by_status: dict[int, list[str]] = {}
    for error in errors:
        codes = by_status.setdefault(error.status_code, [])
        if error.code not in codes:
            codes.append(error.code)
    return dict(sorted(by_status.items()))


def _error_answer(status: int, codes: list[str]) -> dict[str, Any]:
    """The ErrorBody, its `error` narrowed to the codes this operation answers with."""
    answer: dict[str, Any] = {
        "description": "error: " + ", ".join(codes),
        "content": {
            "application/json": {
                "schema": {
                    "allOf": [
                        {"$ref": REF + "ErrorBody"},
                        {"properties": {"error": {"enum": codes}}},
                    ]
                }
            }
        },
    }
    if status == 401 and "invalid_customer_token" in codes:
        answer["headers"] = {
            "WWW-Authenticate": {"required": True, "schema": {"type": "string", "const": "Bearer"}}
        }
    if status in (429, 503):
        answer["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before trying again",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return answer
