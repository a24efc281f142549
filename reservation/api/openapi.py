"""The OpenAPI 3 document of the HTTP API, with bodies from the msgspec structs."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from reservation import __version__
from reservation.schemas import BODY_TYPES

REF = "#/components/schemas/"


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": REF + schema}}}}


def _answer(description: str, schema: str = "ErrorBody") -> dict[str, Any]:
    return {"description": description, **_json(schema)}


ERRORS = {
    "401": _answer("admin token missing or wrong (unauthorized)"),
    "404": _answer("not found (not_found, unknown_sku)"),
    "409": _answer("conflict (insufficient_stock, customer_limit_exceeded, already_committed, …)"),
    "413": _answer("body over 64 KiB (payload_too_large)"),
    "422": _answer("invalid input (invalid_request, mixed_pools, customer_required)"),
    "502": _answer(
        "Stripe refused the request for good (payment_provider_refused; details carry "
        "stripe_code and stripe_message; retrying will not help)"
    ),
    "503": {
        **_answer("Redis or MongoDB did not answer (storage_unavailable)"),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: ERRORS[code] for code in codes}


def _path_param(name: str, pattern: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if pattern:
        schema["pattern"] = pattern
    return {"name": name, "in": "path", "required": True, "schema": schema}


SKU = _path_param("sku", r"^[A-Za-z0-9._-]{1,64}$")
RESERVATION = _path_param("reservation_id", r"^[A-Za-z0-9._-]{1,64}\.[A-Za-z0-9_-]{16,64}$")
SESSION = _path_param("checkout_session_id")
ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}]


@cache
def openapi_document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(BODY_TYPES, ref_template=REF + "{name}")
    return {
        "openapi": "3.1.0",
        "info": {"title": "Stock reservation for Stripe Checkout", "version": __version__},
        "components": {
            "schemas": components,
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/products/{sku}": {
                "put": {
                    "summary": "Create or update a product and its stock (admin)",
                    "security": ADMIN,
                    "parameters": [SKU],
                    "requestBody": {"required": True, **_json("ProductIn")},
                    "responses": {
                        "200": _answer("the product", "ProductView"),
                        **_errors("401", "409", "413", "422", "503"),
                    },
                },
                "get": {
                    "summary": "A product with its live reserved / sold / available counts",
                    "parameters": [SKU],
                    "responses": {
                        "200": _answer("the product", "ProductView"),
                        **_errors("404", "422", "503"),
                    },
                },
            },
            "/v1/products": {
                "get": {
                    "summary": "Every product",
                    "responses": {
                        "200": _answer("the catalog", "ProductList"),
                        **_errors("503"),
                    },
                }
            },
            "/v1/reservations": {
                "post": {
                    "summary": "Hold a cart (all lines or none)",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": (
                                "random per cart (a UUID): the same key returns the same "
                                "reservation for 24 hours; scoped by customer_id when given, "
                                "shared by all anonymous clients otherwise"
                            ),
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        }
                    ],
                    "requestBody": {"required": True, **_json("ReservationIn")},
                    "responses": {
                        "201": _answer("the hold", "ReservationView"),
                        **_errors("404", "409", "413", "422", "503"),
                    },
                }
            },
            "/v1/reservations/{reservation_id}": {
                "get": {
                    "summary": "A reservation as it stands now",
                    "parameters": [RESERVATION],
                    "responses": {
                        "200": _answer("the reservation", "ReservationView"),
                        **_errors("404", "503"),
                    },
                },
                "delete": {
                    "summary": "Release a hold (idempotent); its open Checkout Session is "
                    "expired at Stripe first (409 already_committed if the buyer paid)",
                    "parameters": [RESERVATION],
                    "responses": {
                        "200": _answer("the released reservation", "ReservationView"),
                        **_errors("404", "409", "503"),
                    },
                },
            },
            "/v1/checkout": {
                "post": {
                    "summary": "A Stripe Checkout Session for a held reservation, or for a cart",
                    "requestBody": {"required": True, **_json("CheckoutIn")},
                    "responses": {
                        "201": _answer("the session to send the buyer to", "CheckoutView"),
                        **_errors("404", "409", "413", "422", "502", "503"),
                    },
                }
            },
            "/v1/webhooks/stripe": {
                "post": {
                    "summary": "Stripe events (signed; the raw body is verified)",
                    "parameters": [
                        {
                            "name": "Stripe-Signature",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "responses": {
                        "200": _answer("handled, or a known duplicate", "WebhookAnswer"),
                        "400": _answer("bad signature or payload (invalid_signature, …)"),
                        **_errors("413", "503"),
                    },
                }
            },
            "/v1/orders/{checkout_session_id}": {
                "get": {
                    "summary": "An order (admin)",
                    "security": ADMIN,
                    "parameters": [SESSION],
                    "responses": {
                        "200": _answer("the order", "OrderView"),
                        **_errors("401", "404", "503"),
                    },
                }
            },
            "/v1/orders": {
                "get": {
                    "summary": "Orders, newest first (admin)",
                    "security": ADMIN,
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "string",
                                "enum": [
                                    "paid",
                                    "awaiting_payment",
                                    "payment_failed",
                                    "refunded",
                                    "refunded_oversold",
                                ],
                            },
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": {
                        "200": _answer("the orders", "OrderList"),
                        **_errors("401", "422", "503"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "The process runs",
                    "responses": {"200": _answer("alive", "Health")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Redis and MongoDB answer",
                    "responses": {
                        "200": _answer("ready", "Readiness"),
                        **_errors("503"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
    }
