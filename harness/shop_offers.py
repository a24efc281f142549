"""The demo's shop backend hears of the waiting list's offers: it receives the service's signed
webhooks (harness/shop_hooks.py: the signature verified, each event taken once by its id) on
`POST /shop/hooks`, keeps them per customer, and tells the storefront of its buyer's own on
`GET /shop/offers` (the buyer named by the customer token the shop handed out, as for a hold).

A real shop would e-mail the buyer, or push to their phone; the demo's storefront asks every
few seconds, which is what a page without a push channel does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.customer_tokens import AUDIENCE
from harness.shop_hooks import ShopHooks

# The environment variable the service signs the shop's webhooks with (the demo gives both
# processes the same).
HOOKS_SECRET_VARIABLE = "RESERVATION_SHOP_WEBHOOK_SECRET"
HOOKS_PATH = "/shop/hooks"
NO_STORE = {"Cache-Control": "no-store"}
CREATED = "waitlist.offer_created"
LAPSED = "waitlist.offer_lapsed"


@dataclass
class ShopOffers:
    """The webhooks received (None: the demo's service sends none) and the secret the buyers'
    tokens are signed with."""

    token_secret: str
    hooks: ShopHooks | None

    def routes(self) -> list[Route]:
        routes = [Route("/shop/offers", self.offers, methods=["GET"])]
        if self.hooks is not None:
            routes.append(self.hooks.route(HOOKS_PATH))
        return routes

    def customer(self, request: Request) -> str | None:
        """The customer the request's bearer token names (a token this shop signed), or None."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            claims = jwt.decode(token, self.token_secret, algorithms=["HS256"], audience=AUDIENCE)
        except jwt.PyJWTError:
            return None
        subject = claims.get("sub")
        return subject if isinstance(subject, str) and subject else None

    async def offers(self, request: Request) -> Response:
        """`{"customer_id", "offers": [...], "events": [...]}`: the buyer's events as they came
        (each once), and per offer its latest state: `offered`, or `lapsed` once its lapse came."""
        customer = self.customer(request)
        if customer is None:
            body = {"error": "customer_token_required", "message": "Send the shop's token."}
            return JSONResponse(body, 401, headers=NO_STORE)
        events = self.events_of(customer)
        answer = {"customer_id": customer, "offers": offers_of(events), "events": events}
        return JSONResponse(answer, headers=NO_STORE)

    def events_of(self, customer: str) -> list[dict[str, Any]]:
        if self.hooks is None:
            return []
        with self.hooks.lock:
            taken = list(self.hooks.events)
        return [
            {"id": event["id"], "type": event["type"], "created": event["created"], **event["data"]}
            for event in taken
            if event.get("data", {}).get("customer_id") == customer
        ]


def offers_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per offer (by reservation id), in the order they were made: its SKU, quantity,
    end, and `status` `offered` or `lapsed`."""
    offers: dict[str, dict[str, Any]] = {}
    for event in events:
        reservation_id = event["reservation_id"]
        if event["type"] == CREATED and reservation_id not in offers:
            offers[reservation_id] = {
                "sku": event["sku"],
                "reservation_id": reservation_id,
                "quantity": event["quantity"],
                "expires_at": event["expires_at"],
                "status": "offered",
            }
        elif event["type"] == LAPSED:
            offer = offers.setdefault(
                reservation_id,
                {
                    "sku": event["sku"],
                    "reservation_id": reservation_id,
                    "quantity": event["quantity"],
                    "expires_at": event["expires_at"],
                },
            )
            offer["status"] = "lapsed"
    return list(offers.values())
