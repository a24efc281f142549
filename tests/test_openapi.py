"""/openapi.json describes exactly the routes the app serves, with the code's own patterns."""

from __future__ import annotations

import re
from typing import Any, get_args

import httpx
import pytest
from starlette.routing import Route

from domain import errors
from domain.reservations import ReservationStatus
from domain.rules import NAME_PATTERN
from domain.statuses import OrderStatus
from domain.waitlist import WaiterStatus
from reservation.api.openapi import CONVERTOR, Answer, Operation, openapi_document
from reservation.api.ops import healthz
from reservation.app import create_app
from reservation.core.cart import CUSTOMER_PATTERN
from reservation.core.idempotency import KEY_PATTERN
from reservation.core.reservation_ids import new_reservation_id, pool_of_reservation
from reservation.settings import Settings

# Starlette answers HEAD wherever it answers GET; the document leaves HEAD implicit.
IMPLICIT = {"HEAD"}


async def served_document() -> tuple[set[tuple[str, str]], dict[str, Any]]:
    """What the app routes, as (METHOD, path), and the document it serves (no lifespan needed:
    the document is built from the routes alone)."""
    app = create_app(Settings())
    routed = set()
    for route in app.routes:
        assert isinstance(route, Route), route
        if not route.include_in_schema:
            continue  # the storefront's and /ops's pages and files (reservation/api/pages.py)
        for method in (route.methods or set()) - IMPLICIT:
            # "{customer_id:path}" is documented as "{customer_id}" (the convertor is Starlette's).
            routed.add((method, CONVERTOR.sub(r"{\1}", route.path)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        again = await client.get("/openapi.json")
    assert again.content == response.content
    return routed, response.json()


async def test_every_route_is_in_the_document_and_nothing_else() -> None:
    routed, document = await served_document()
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert documented == routed
    assert len(routed) == 29
    operation_ids = [
        operation["operationId"]
        for operations in document["paths"].values()
        for operation in operations.values()
    ]
    assert len(operation_ids) == len(set(operation_ids))


async def test_the_document_uses_the_validators_patterns_and_the_enums() -> None:
    _, document = await served_document()
    schemas = document["components"]["schemas"]
    paths = document["paths"]

    def pattern(schema: dict[str, Any]) -> str:
        return str(schema["pattern"])

    sku = paths["/v1/products/{sku}"]["get"]["parameters"][0]["schema"]
    assert pattern(sku) == f"^{NAME_PATTERN.pattern}$"
    assert pattern(schemas["CartLineIn"]["properties"]["sku"]) == pattern(sku)
    assert pattern(schemas["ProductIn"]["properties"]["pool"]["anyOf"][0]) == pattern(sku)
    customer = schemas["ReservationIn"]["properties"]["customer_id"]["anyOf"][0]
    assert pattern(customer) == f"^{CUSTOMER_PATTERN.pattern}$"
    key = paths["/v1/reservations"]["post"]["parameters"][0]
    assert (key["name"], key["in"], pattern(key["schema"])) == (
        "Idempotency-Key",
        "header",
        f"^{KEY_PATTERN.pattern}$",
    )
    # A reservation id the server makes matches the documented pattern, and one that does not
    # match is refused by the server's own parser.
    reservation = paths["/v1/reservations/{reservation_id}"]["get"]["parameters"][0]["schema"]
    made = new_reservation_id("drop-1")
    assert re.fullmatch(pattern(reservation), made)
    assert pool_of_reservation(made) == "drop-1"
    with pytest.raises(errors.NotFound):
        pool_of_reservation("drop-1.short")
    assert not re.fullmatch(pattern(reservation), "drop-1.short")
    # Statuses are the core's enums, not copies of their values.
    assert sorted(schemas["ReservationStatus"]["enum"]) == sorted(ReservationStatus)
    assert sorted(schemas["OrderStatus"]["enum"]) == sorted(OrderStatus)
    assert schemas["ReservationView"]["properties"]["status"] == {
        "$ref": "#/components/schemas/ReservationStatus"
    }
    assert schemas["OrderView"]["properties"]["status"] == {
        "$ref": "#/components/schemas/OrderStatus"
    }


def error_codes(operation: dict[str, Any]) -> dict[str, list[str]]:
    return {
        status: answer["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"][
            "enum"
        ]
        for status, answer in operation["responses"].items()
        if int(status) >= 400
    }


async def test_error_answers_name_the_codes_of_the_error_tree() -> None:
    _, document = await served_document()
    tree = {error.code: error.status_code for error in _subclasses(errors.ReservationError)}
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, codes in error_codes(operation).items():
                assert all(tree[code] == int(status) for code in codes), (status, codes)
                if status in ("429", "503"):
                    assert operation["responses"][status]["headers"]["Retry-After"]["required"]
    reserve = error_codes(document["paths"]["/v1/reservations"]["post"])
    assert reserve["409"] == [
        *("insufficient_stock", "customer_limit_exceeded", "hold_cap_reached"),
        *("not_on_sale", "admission_used"),
    ]
    assert "admission_required" in reserve["403"]
    assert "admission_invalid" in reserve["403"]
    join = document["paths"]["/v1/queue/{sku}"]["post"]
    assert join["requestBody"]["required"] is False  # an anonymous join sends none
    assert error_codes(join)["409"] == ["no_waiting_room"]
    assert error_codes(document["paths"]["/v1/queue/{sku}/{ticket}"]["get"])["404"] == [
        "unknown_sku",
        "ticket_not_found",
    ]
    # The routes that hold stock or ask Stripe are rate limited; no other route is.
    limited = [
        (method, path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "429" in error_codes(operation)
    ]
    assert limited == [
        ("post", "/v1/reservations"),
        ("post", "/v1/queue/{sku}"),
        ("post", "/v1/waitlist/{sku}"),
        ("post", "/v1/checkout"),
    ]
    assert reserve["429"] == ["rate_limited"]
    admin = document["paths"]["/v1/orders"]["get"]
    assert admin["security"] == [{"adminToken": []}]
    assert error_codes(admin)["401"] == ["unauthorized"]


async def test_every_json_body_is_declared_and_may_answer_415() -> None:
    _, document = await served_document()
    with_body = [
        (method, path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]
    assert with_body == [
        ("put", "/v1/products/{sku}"),
        ("post", "/v1/reservations"),
        ("post", "/v1/queue/{sku}"),
        ("post", "/v1/waitlist/{sku}"),
        ("post", "/v1/checkout"),
        ("post", "/v1/webhooks/stripe"),
        ("post", "/v1/refunds/{checkout_session_id}/settle"),
    ]
    for method, path in with_body:
        operation = document["paths"][path][method]
        assert list(operation["requestBody"]["content"]) == ["application/json"]
        refused = error_codes(operation).get("415")
        # The webhook reads Stripe's bytes whatever their Content-Type.
        expected = None if path == "/v1/webhooks/stripe" else ["unsupported_media_type"]
        assert refused == expected, (method, path)


def _subclasses(cls: type[errors.ReservationError]) -> list[type[errors.ReservationError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_a_route_the_document_does_not_describe_is_refused() -> None:
    described = Operation("GET", "/healthz", healthz, "alive", answer=Answer(200, "alive"))
    hidden = Route("/storefront", healthz, include_in_schema=False)
    assert set(openapi_document([described, hidden])["paths"]) == {"/healthz"}
    with pytest.raises(TypeError, match="not described"):
        openapi_document([described, Route("/storefront", healthz)])
    with pytest.raises(ValueError, match="path parameters"):
        Operation("GET", "/v1/products/{sku}", healthz, "no sku", answer=Answer(200, "x"))


async def test_the_event_stream_is_described_as_one() -> None:
    _, document = await served_document()
    events = document["paths"]["/v1/products/{sku}/events"]["get"]
    assert list(events["responses"]["200"]["content"]) == ["text/event-stream"]
    codes = error_codes(events)
    assert codes == {
        "404": ["unknown_sku"],
        "422": ["invalid_request"],
        "503": ["server_busy", "storage_unavailable"],
    }
    headers = [p["name"] for p in events["parameters"] if p["in"] == "header"]
    assert headers == ["Last-Event-ID"]


async def test_the_waiting_list_routes_are_described() -> None:
    _, document = await served_document()
    paths = document["paths"]
    entry = paths["/v1/waitlist/{sku}/{customer_id}"]
    assert entry["get"]["security"] == [{}, {"customerToken": []}, {"adminToken": []}]
    left = entry["delete"]["responses"]["204"]
    assert left == {"description": "left, or no longer waiting"}  # No Content: no body
    assert error_codes(entry["get"])["404"] == ["unknown_sku", "not_in_line"]
    assert error_codes(entry["delete"])["403"] == ["customer_mismatch"]
    join = paths["/v1/waitlist/{sku}"]["post"]
    assert error_codes(join)["409"] == [
        "on_sale",
        "not_on_sale",
        "waitlist_closed",
        "customer_limit_exceeded",
    ]
    assert error_codes(join)["422"] == ["invalid_request", "customer_required"]
    for admin in (
        paths["/v1/waitlist/{sku}"]["get"],
        paths["/v1/waitlist/{sku}/close"]["post"],
        paths["/v1/waitlist/{sku}/open"]["post"],
    ):
        assert admin["security"] == [{"adminToken": []}]
        assert error_codes(admin)["401"] == ["unauthorized"]
    status = document["components"]["schemas"]["WaitlistEntryView"]["properties"]["status"]
    assert sorted(status["enum"]) == sorted(get_args(WaiterStatus))
