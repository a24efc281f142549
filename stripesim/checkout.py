"""Checkout Sessions: created, validated and expired as Stripe's API does."""

from __future__ import annotations

import heapq
import re
from typing import Any

from stripesim.errors import JsonObject, StripeError, invalid, missing_param, no_such
from stripesim.params import Params
from stripesim.store import Origin, Store, new_id

MODES = ("payment", "setup", "subscription")
UI_MODES = ("hosted", "embedded", "custom")
MIN_EXPIRY_SECONDS = 30 * 60
MAX_EXPIRY_SECONDS = 24 * 3600
MAX_LINE_ITEMS = 100
MAX_AMOUNT = 99_999_999  # eight digits in the currency's smallest unit
EXPANDABLE = ("payment_intent", "customer", "invoice", "subscription", "setup_intent")
_CURRENCY = re.compile(r"^[a-z]{3}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _url(params: Params, name: str) -> str | None:
    value = params.string(name, max_length=5000)
    if value is not None and not re.match(r"^https?://[^\s/]+", value):
        raise invalid("Not a valid URL", name, "url_invalid")
    return value


def _expires_at(params: Params, now: float) -> int:
    expires_at = params.integer("expires_at")
    if expires_at is None:
        return int(now) + MAX_EXPIRY_SECONDS
    if expires_at < int(now) + MIN_EXPIRY_SECONDS:
        raise invalid(
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session "
            "creation.",
            "expires_at",
        )
    if expires_at > int(now) + MAX_EXPIRY_SECONDS:
        raise invalid(
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            "expires_at",
        )
    return expires_at


def _currency(price_data: Params) -> str:
    currency = price_data.string("currency", required=True) or ""
    if not _CURRENCY.match(currency.lower()):
        raise invalid(f"Invalid currency: {currency}.", price_data.path("currency"))
    return currency.lower()


def _line_item(line: Params, now: float) -> JsonObject:
    if line.has("price") and line.has("price_data"):
        raise invalid(
            "You may only specify one of these parameters: price, price_data.", line.path("price")
        )
    if line.has("price"):
        price_id = line.string("price", required=True) or ""
        raise no_such("price", price_id, line.path("price"), status=400)
    price_data = line.child("price_data")
    if price_data is None:
        raise invalid(
            f"You must specify either `price` or `price_data` for {line.prefix}.",
            line.path("price_data"),
            "parameter_missing",
        )
    product = price_data.child("product_data", required=True)
    assert product is not None
    name = product.string("name", required=True)
    unit_amount = price_data.integer("unit_amount", required=True, minimum=0) or 0
    quantity = line.integer("quantity", required=True, minimum=1) or 1
    currency = _currency(price_data)
    price = {
        "id": new_id("price"),
        "object": "price",
        "active": False,
        "created": int(now),
        "currency": currency,
        "livemode": False,
        "product": new_id("prod"),
        "type": "recurring" if price_data.has("recurring") else "one_time",
        "unit_amount": unit_amount,
    }
    return {
        "id": new_id("li"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": unit_amount * quantity,
        "amount_tax": 0,
        "amount_total": unit_amount * quantity,
        "currency": currency,
        "description": name,
        "metadata": line.metadata() or {},
        "price": price,
        "quantity": quantity,
    }


def _line_items(params: Params, mode: str, now: float) -> list[JsonObject]:
    lines = params.children("line_items")
    if mode == "setup":
        if lines:
            raise invalid("You can not pass `line_items` in `setup` mode.", "line_items")
        return []
    if not lines:
        raise missing_param("line_items")
    if len(lines) > MAX_LINE_ITEMS:
        raise invalid(f"You can pass at most {MAX_LINE_ITEMS} line items.", "line_items")
    items = [_line_item(line, now) for line in lines]
    if len({item["currency"] for item in items}) > 1:
        raise invalid("All line items must have the same currency.", "line_items")
    return items


def _customer_email(params: Params) -> str | None:
    email = params.string("customer_email", max_length=800)
    if email is not None and not _EMAIL.match(email):
        raise invalid(f"Invalid email address: {email}", "customer_email", "email_invalid")
    return email


def create_session(store: Store, params: Params, now: float, public_url: str) -> JsonObject:
    """Validate like Stripe, then store an open session and its line items."""
    mode = params.choice("mode", MODES, required=True) or ""
    ui_mode = params.choice("ui_mode", UI_MODES) or "hosted"
    success_url = _url(params, "success_url")
    if ui_mode == "hosted" and success_url is None:
        raise missing_param("success_url")
    cancel_url = _url(params, "cancel_url")
    expires_at = _expires_at(params, now)
    items = _line_items(params, mode, now)
    amount = sum(item["amount_total"] for item in items) if items else None
    if amount is not None and amount > MAX_AMOUNT:
        raise invalid(
            f"The Checkout Session's total amount due must be no more than {MAX_AMOUNT} in the "
            "currency's smallest unit.",
            "line_items",
            "amount_too_large",
        )
    intent_data = params.child("payment_intent_data")
    session_id = new_id("cs_test", 58)
    session: JsonObject = {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": amount,
        "amount_total": amount,
        "cancel_url": cancel_url,
        "client_reference_id": params.string("client_reference_id", max_length=200),
        "created": int(now),
        "currency": items[0]["currency"] if items else params.string("currency"),
        "customer": params.string("customer"),
        "customer_details": None,
        "customer_email": _customer_email(params),
        "expires_at": expires_at,
        "livemode": False,
        "locale": params.string("locale"),
        "metadata": _present(params.metadata() or {}),
        "mode": mode,
        "payment_intent": None,
        "payment_method_types": params.strings("payment_method_types") or ["card"],
        "payment_status": "unpaid",
        "status": "open",
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": ui_mode,
        "url": f"{public_url}/pay/{session_id}" if ui_mode == "hosted" else None,
    }
    store.sessions[session_id] = session
    heapq.heappush(store.expiry, (expires_at, session_id))
    store.line_items[session_id] = items
    store.intent_metadata[session_id] = _present(
        intent_data.metadata() or {} if intent_data else {}
    )
    return session


def _present(metadata: dict[str, str]) -> dict[str, str]:
    """On create, an empty value sets nothing."""
    return {key: value for key, value in metadata.items() if value != ""}


def session(store: Store, session_id: str) -> JsonObject:
    found = store.sessions.get(session_id)
    if found is None:
        raise no_such("checkout.session", session_id, "session")
    return found


def view(store: Store, found: JsonObject, expand: list[str]) -> JsonObject:
    """The session as answered, with `line_items` / `payment_intent` expanded on request."""
    answer = dict(found)
    for field in expand:
        if field.startswith("line_items"):
            items = store.line_items[found["id"]]
            url = f"/v1/checkout/sessions/{found['id']}/line_items"
            answer["line_items"] = {"object": "list", "data": items, "has_more": False, "url": url}
        elif field.startswith("payment_intent") and found["payment_intent"] is not None:
            answer["payment_intent"] = store.payment_intents[found["payment_intent"]]
        elif field.split(".")[0] not in EXPANDABLE:
            raise invalid(
                f"This property cannot be expanded ({field}).", "expand", "parameter_invalid"
            )
    return answer


def update_metadata(found: JsonObject, params: Params) -> JsonObject:
    """`POST /v1/checkout/sessions/{id}`: metadata is merged; an empty value unsets a key."""
    metadata = params.metadata()
    if metadata is not None:
        merged = {**found["metadata"], **metadata} if metadata else {}
        found["metadata"] = _present(merged)
    return found


def expire(store: Store, found: JsonObject, now: float, origin: Origin | None) -> JsonObject:
    """Open → expired, with its `checkout.session.expired` event; anything else is refused."""
    if found["status"] != "open":
        raise StripeError(
            400,
            "invalid_request_error",
            'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
            f"Session has a status of `{found['status']}`.",
        )
    found["status"] = "expired"
    found["url"] = None
    return store.emit("checkout.session.expired", found, now, origin)


def matching(store: Store, params: Params) -> list[JsonObject]:
    """Sessions for `GET /v1/checkout/sessions`, newest first, filtered as asked."""
    filters: dict[str, Any] = {}
    for name in ("payment_intent", "status", "customer"):
        value = params.string(name)
        if value is not None:
            filters[name] = value
    found = [s for s in store.sessions.values() if all(s[k] == v for k, v in filters.items())]
    return found[::-1]
