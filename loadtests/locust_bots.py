"""The `bots` scenario of the flash sale: a scalper's bots, every attempt of which the service
must refuse, and the honest buyers they prey on.

Each bot task is one attempt, reported under its own request name (`bot: invented id` ...):

- invented id: a hold for a made-up customer id, without a token (401);
- borrowed id: a hold for an honest buyer's id, with a valid token of the bot's own (403);
- forged token: a hold for an honest buyer, with a token signed by a secret the bot guessed (401);
- unsigned token: the same with `alg: none` (401);
- forwarded headers: an honest buyer's id without a token, the request claiming another client
  address in X-Forwarded-For, Forwarded and X-Real-IP (401: an address is nobody's identity);
- stolen hold: an honest buyer's reservation read, released or checked out with the bot's own
  token (404: a verified customer's reservation is theirs alone).

An attempt the service lets through (a 2xx) is a failure named `bot: <what>: accepted`; one
refused otherwise than promised, `bot: <what>: not refused (<status> <error>)`. The verifier
(loadtests/verify_bots.py) fails the sale on either. A 429 (the bot's own address or id rate
limited) is a refusal too.

The service verifies tokens only when it has a key (RESERVATION_CUSTOMER_TOKEN_SECRET, which the
rehearsal sets); without one, run no bots: they would be let through, as promised. Behind a
waiting room (`--admit-per-second`) a hold without an admission is refused `403` too: a bot's
hold answered 403 `admission_required` counts as refused.
"""

from __future__ import annotations

import collections
import ipaddress
import random
import time
import uuid
from typing import Any

import jwt
from locust import FastHttpUser, between, tag, task

from harness.customer_tokens import AUDIENCE, LIFETIME_SECONDS, bearer, mint, new_secret
from loadtests.locust_options import customer_token_secret
from loadtests.locust_products import CATALOG
from loadtests.verify_bots import ACCEPTED, BOT, BOT_ID_PREFIX, NOT_REFUSED

FORWARDED_FOR = "X-Forwarded-For"
# The honest buyers of this Locust process the bots know of: customer ids and reservation ids.
HONEST_CUSTOMERS: collections.deque[str] = collections.deque(maxlen=1000)
HONEST_HOLDS: collections.deque[str] = collections.deque(maxlen=1000)


def remember_customer(customer_id: str) -> None:
    """An honest buyer's id, for the bots to borrow."""
    HONEST_CUSTOMERS.append(customer_id)


def remember_hold(reservation_id: str) -> None:
    """An honest buyer's reservation, for the bots to try to steal."""
    HONEST_HOLDS.append(reservation_id)


def random_address() -> str:
    return str(ipaddress.IPv4Address(random.getrandbits(32)))


def unsigned(customer_id: str) -> str:
    """A token with `alg: none`: claims without a signature."""
    now = int(time.time())
    claims = {"sub": customer_id, "aud": AUDIENCE, "exp": now + LIFETIME_SECONDS, "iat": now}
    return jwt.encode(claims, "", algorithm="none")


class Bots(FastHttpUser):
    """A scalper's bot: one attempt per task, each a way around the per-customer rules."""

    weight = 1
    wait_time = between(0.5, 2.0)

    def __init__(self, environment: Any) -> None:
        # Its own address, as the proxy in front of the shop writes it (see SaleUser).
        self.address = random_address()
        self.default_headers = {FORWARDED_FOR: self.address}
        super().__init__(environment)

    def on_start(self) -> None:
        self.own_id = f"{BOT_ID_PREFIX}{uuid.uuid4().hex[:16]}"
        self.secret = customer_token_secret(self.environment.parsed_options)
        self.own_token = mint(self.own_id, self.secret) if self.secret else ""

    def victim(self) -> str:
        """An honest buyer's id (or, before any is known, one the bot makes up)."""
        if HONEST_CUSTOMERS:
            return random.choice(HONEST_CUSTOMERS)
        return f"{BOT_ID_PREFIX}victim-{uuid.uuid4().hex[:8]}"

    @tag("bots")
    @task(2)
    def invented_id(self) -> None:
        customer_id = f"{BOT_ID_PREFIX}{uuid.uuid4().hex[:16]}"
        self.hold("invented id", customer_id, {}, expected=(401,))

    @tag("bots")
    @task(2)
    def borrowed_id(self) -> None:
        self.hold("borrowed id", self.victim(), bearer(self.own_token), expected=(403,))

    @tag("bots")
    @task
    def forged_token(self) -> None:
        victim = self.victim()
        forged = mint(victim, new_secret())  # the bot does not know the shop's secret
        self.hold("forged token", victim, bearer(forged), expected=(401,))

    @tag("bots")
    @task
    def unsigned_token(self) -> None:
        victim = self.victim()
        self.hold("unsigned token", victim, bearer(unsigned(victim)), expected=(401,))

    @tag("bots")
    @task
    def forwarded_headers(self) -> None:
        claimed = random_address()
        headers = {
            # As the proxy would pass it: the claim first, the address it saw last.
            FORWARDED_FOR: f"{claimed}, {self.address}",
            "Forwarded": f"for={claimed}",
            "X-Real-IP": claimed,
        }
        self.hold("forwarded headers", self.victim(), headers, expected=(401,))

    @tag("bots")
    @task(2)
    def stolen_hold(self) -> None:
        if not HONEST_HOLDS:
            return
        path = f"/v1/reservations/{random.choice(HONEST_HOLDS)}"
        mine = bearer(self.own_token)
        kind = random.choice(("read", "release", "checkout"))
        name = f"stolen hold: {kind}"
        if kind == "read":
            self.attempt("GET", path, name, mine, None, expected=(404,))
        elif kind == "release":
            self.attempt("DELETE", path, name, mine, None, expected=(404,))
        else:
            body = {"reservation_id": path.rsplit("/", 1)[1]}
            self.attempt("POST", "/v1/checkout", name, mine, body, expected=(404,))

    def hold(
        self, what: str, customer_id: str, headers: dict[str, str], expected: tuple[int, ...]
    ) -> None:
        body = {"items": [{"sku": CATALOG.hot, "quantity": 1}], "customer_id": customer_id}
        headers = {**headers, "Idempotency-Key": str(uuid.uuid4())}
        if getattr(self.environment.parsed_options, "admit_per_second", 0) > 0:
            expected += (403,)  # behind a waiting room a bot has no admission: 403 as well
        self.attempt("POST", "/v1/reservations", what, headers, body, expected)

    def attempt(
        self,
        method: str,
        path: str,
        what: str,
        headers: dict[str, str],
        body: dict[str, Any] | None,
        expected: tuple[int, ...],
    ) -> None:
        """One attempt, reported as refused, accepted or not refused as promised."""
        name = f"{BOT}{what}"
        with self.client.request(
            method, path, json=body, headers=headers, name=name, catch_response=True
        ) as response:
            status = response.status_code
            if status in (*expected, 429):
                response.success()
            elif 200 <= status < 300:
                response.request_meta["name"] = f"{name}{ACCEPTED}"
                response.failure(f"{status}: a bot's attempt was let through")
            elif status:
                error = _error_code(response)
                response.request_meta["name"] = f"{name}{NOT_REFUSED} ({status} {error})"
                response.failure(f"{status} {error}: refused otherwise than promised")
            else:
                response.failure(f"0: no answer ({getattr(response, 'error', None)!r})"[:200])


def _error_code(response: Any) -> str:
    try:
        return str(response.json().get("error"))
    except (ValueError, AttributeError):
        return "?"
