"""The flash sale's users in common (loadtests/locustfile.py spawns them): `SaleUser`, a buyer
with an address and a token of its own who reserves and names the refusals the contract
promises, and `Paying`, one who checks out, pays on the Stripe simulator as the payment mix
says and waits for the final order (the `buyers` and `fair-start` scenarios)."""

from __future__ import annotations

import gc
import ipaddress
import random
import time
import uuid
from typing import Any

from locust import FastHttpUser, between
from locust.env import Environment

from harness.customer_tokens import bearer, mint
from loadtests.locust_bots import remember_customer, remember_hold
from loadtests.locust_options import customer_token_secret, options, payment_mix

FINAL_ORDER = {"paid", "payment_failed", "refunded", "refunded_oversold"}
FORWARDED_FOR = "X-Forwarded-For"
# The request names of the refusals the contract promises, by error code.
REFUSALS = {
    "insufficient_stock": "sold out",
    "customer_limit_exceeded": "over the limit",
    "customer_required": "customer required",
    "hold_cap_reached": "hold cap",
    "rate_limited": "rate limited",
}


# How long a user who is done waits: for the rest of the run. A user that stopped would be
# replaced by a new one while Locust is still ramping up, and the run would have more distinct
# buyers than --users; one that lingers keeps the count exact and costs an idle greenlet.
LINGER_SECONDS = 10.0**6
# A buyer's token lasts 15 minutes; a new one is minted when this one is this old.
RENEW_TOKEN_SECONDS = 10 * 60.0


class SaleUser(FastHttpUser):
    abstract = True
    pause = between(0.5, 2.0)  # between two tasks, while the user has not left

    def __init__(self, environment: Environment) -> None:
        # An address of this buyer's own, on every request (FastHttpUser hands default_headers
        # to the session it makes here). Random, so Locust's processes need not share a counter.
        self.address = str(ipaddress.IPv4Address(random.getrandbits(32)))
        self.default_headers = {FORWARDED_FOR: self.address}
        super().__init__(environment)

    def on_start(self) -> None:
        self.customer_id = f"cus_{uuid.uuid4().hex[:16]}"
        self.secret = customer_token_secret(self.parsed)
        self.token, self.minted_at = "", 0.0
        remember_customer(self.customer_id)
        self.gone = False
        # Every user's objects live as long as the run: freeze them out of the collector's
        # way. Otherwise each full collection walks all of them, and with thousands of users
        # it stops the whole load generator for 100-750 ms (measured): every request in flight
        # then reports that pause as latency. freeze() is a list splice, cheap per user.
        gc.freeze()
        # Locust's ramp spawns users in batches (spawn rate users per second, every second):
        # spread each batch's first requests over the second, as people would arrive.
        if self.parsed.arrival_jitter > 0:
            time.sleep(random.uniform(0, self.parsed.arrival_jitter))  # gevent's: Locust patches

    def wait_time(self) -> float:
        return LINGER_SECONDS if self.gone else float(self.pause())

    def authorization(self) -> dict[str, str]:
        """The header of this buyer's token (minted again when old); none without a secret."""
        if not self.secret:
            return {}
        if time.monotonic() - self.minted_at > RENEW_TOKEN_SECONDS or not self.token:
            self.token, self.minted_at = mint(self.customer_id, self.secret), time.monotonic()
        return bearer(self.token)

    def leave(self) -> None:
        """This user is done for the run (bought, gave up, walked away): no more tasks."""
        self.gone = True

    @property
    def parsed(self) -> Any:
        return options(self.environment)

    def reserve(self, lines: list[tuple[str, int]], customer_id: str | None = None) -> str | None:
        """POST /v1/reservations; the reservation id, or None when refused as the contract
        says (reported under the refusal's own name)."""
        return self.reserve_as(lines, customer_id, "reserve")[0]

    def reserve_as(
        self, lines: list[tuple[str, int]], customer_id: str | None, name: str
    ) -> tuple[str | None, str]:
        """POST /v1/reservations named `name`: the reservation id (None when refused) and the
        refusal's error code ("" when held or failed); a refusal is named `<name>: <refusal>`."""
        body: dict[str, Any] = {"items": [{"sku": s, "quantity": q} for s, q in lines]}
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        if customer_id:
            body["customer_id"] = customer_id
            headers.update(self.authorization())
        with self.client.post(
            "/v1/reservations", json=body, headers=headers, name=name, catch_response=True
        ) as response:
            if response.status_code == 201:
                reservation_id = str(response.json()["id"])
                remember_hold(reservation_id)
                return reservation_id, ""
            refusal = refusal_name(response, name)
            if refusal is None:
                response.failure(answered(response))
                return None, ""
            response.request_meta["name"] = refusal
            response.success()
            return None, str(response.json().get("error"))


def answered(response: Any) -> str:
    """A failed request's status and the start of its body; with no answer at all (status 0),
    the client's error: refused, reset, timed out."""
    if not response.status_code:
        return f"0: no answer ({getattr(response, 'error', None)!r})"[:200]
    return f"{response.status_code}: {(response.text or '')[:200]}"


def refusal_name(response: Any, request: str) -> str | None:
    """The request name of an expected refusal ("reserve: sold out"), or None for a failure."""
    if response.status_code not in (409, 422, 429):
        return None
    try:
        code = response.json().get("error")
    except ValueError:
        return None
    return f"{request}: {REFUSALS[code]}" if code in REFUSALS else None


class Paying(SaleUser):
    """A buyer who, once holding, checks out, pays on the simulator as `--payment-mix` says,
    and waits for the final order."""

    abstract = True

    def on_start(self) -> None:
        super().on_start()
        self.arrived = time.monotonic()
        self.outcomes, self.weights = payment_mix(self.parsed.payment_mix)

    def purchase(self, reservation_id: str) -> None:
        """Check the hold out, pay as the mix says, wait for the webhooks to land."""
        session = self.checkout(reservation_id)
        if session is not None:
            outcome = random.choices(self.outcomes, self.weights)[0]
            self.pay(session, outcome)
            self.await_final(reservation_id, session, outcome)

    def checkout(self, reservation_id: str, name: str = "checkout") -> str | None:
        with self.client.post(
            "/v1/checkout",
            json={"reservation_id": reservation_id},
            headers=self.authorization(),
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code == 201:
                return str(response.json()["checkout_session_id"])
            if response.status_code == 409:  # the hold lapsed meanwhile
                response.request_meta["name"] = f"{name}: hold lapsed"
                response.success()
                return None
            refusal = refusal_name(response, name)
            if refusal is not None:
                response.request_meta["name"] = refusal
                response.success()
                return None
            response.failure(answered(response))
            return None

    def sim(self, path: str, name: str, body: dict[str, Any] | None = None) -> None:
        with self.client.post(
            f"{self.parsed.sim_url}{path}", json=body or {}, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(answered(response))

    def pay(self, session: str, outcome: str) -> None:
        base = f"/_sim/sessions/{session}"
        if outcome == "paid":
            self.sim(f"{base}/complete", "pay: paid", {"payment_status": "paid"})
        elif outcome == "declined":  # the card is declined, the buyer gives up
            self.sim(f"{base}/fail_payment", "pay: declined")
            self.sim(f"{base}/expire", "pay: gives up")
        elif outcome == "cancelled":
            self.sim(f"{base}/expire", "pay: cancelled")
        else:
            self.sim(f"{base}/complete", "pay: delayed", {"payment_status": "unpaid"})
            succeeded = outcome == "delayed_paid"
            self.sim(f"{base}/async_payment", f"pay: {outcome}", {"succeeded": succeeded})

    def await_final(self, reservation_id: str, session: str, outcome: str) -> None:
        """Poll until the webhooks have landed: the order is final (or, for a purchase that
        never paid, the reservation gave its units back)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if outcome in ("declined", "cancelled"):
                done = self.poll(f"/v1/reservations/{reservation_id}", "poll reservation")
                if done is not None and done.get("status") in ("released", "expired"):
                    return
            elif self.parsed.admin_token:
                found = self.poll(f"/v1/orders/{session}", "poll order", admin=True)
                if found is not None and found.get("status") in FINAL_ORDER:
                    return
            else:
                return
            time.sleep(0.5)

    def poll(self, path: str, name: str, admin: bool = False) -> dict[str, Any] | None:
        headers = bearer(self.parsed.admin_token) if admin else self.authorization()
        with self.client.get(path, headers=headers, name=name, catch_response=True) as response:
            if response.status_code == 200:
                found: dict[str, Any] = response.json()
                return found
            if response.status_code == 404:  # the order is not recorded yet
                response.success()
                return None
            response.failure(answered(response))
            return None
