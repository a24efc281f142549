"""A flash sale under Locust: a crowd, shoppers, buyers who pay, abandoners and browsers.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 --headless \\
        --users 2000 --run-time 60s --tags crowd buyers \\
        --sim-url http://127.0.0.1:12111 --admin-token TOKEN --stock 100

Pick scenarios with Locust's tags (`--tags crowd shoppers buyers abandoners browsers bots`;
none: all of them). Sizes come from Locust's own `--users`, `--spawn-rate` and `--run-time` and from
the options below (`--skus`, `--stock`, `--hot-share`, `--payment-mix`, `--spike-seconds` ...).
With `--admin-token` and `--stock`, the products are created at the start (a hot SKU and
`--skus` others). Buyers pay through the Stripe simulator's programmatic endpoints
(`--sim-url`), as a buyer on the pay page would: paid, declined, delayed then paid, delayed
then failed, or cancelled, in the `--payment-mix` shares.

Expected refusals are answers, not failures, reported under their own names: a sold-out
reserve is `reserve: sold out` (409 insufficient_stock), a cart over the per-customer limit
`reserve: over the limit` (409 customer_limit_exceeded), a customer with the most live holds
allowed `reserve: hold cap` (409 hold_cap_reached), a request past a rate limit
`reserve: rate limited` or `checkout: rate limited` (429 rate_limited).

Every buyer is a customer the shop vouches for: with the shop's secret
(`--customer-token-secret`, default RESERVATION_CUSTOMER_TOKEN_SECRET, which the rehearsal sets
on the service and on Locust) it mints its own token (PyJWT, as harness/customer_tokens.py) and
sends `Authorization: Bearer <token>` with its holds, checkouts and reads of its reservation.
The `bots` scenario (loadtests/locust_bots.py) tries the ways around that: invented ids, borrowed
ids, forged tokens, forwarded headers, stolen holds; every attempt must be refused.

Every user is a buyer of their own address: it sends `X-Forwarded-For: <a random IPv4>` on every
request, as the proxy in front of a shop would write it. A service started with
`RESERVATION_TRUSTED_PROXY_HEADER=X-Forwarded-For` (the rehearsal starts it so) limits each user
on its own; one without the setting ignores the header, and every user shares 127.0.0.1's limit.

The load follows `SaleShape`: with `--spike-seconds R` the users arrive within R seconds, stay,
and leave over the last R seconds of `--run-time` (`--leave-seconds`: another span; 0: they
stay to the end, as buyers who stop by themselves do); without, Locust's usual ramp at
`--spawn-rate`.

Run it from the repository root: the sale's options are in loadtests/locust_options.py and
its products in loadtests/locust_products.py.
"""

from __future__ import annotations

import gc
import ipaddress
import random
import time
import uuid
from typing import Any

from locust import FastHttpUser, LoadTestShape, between, events, tag, task
from locust.env import Environment

from harness.customer_tokens import bearer, mint
from loadtests.locust_bots import Bots, remember_customer, remember_hold
from loadtests.locust_options import add_options, customer_token_secret, options, payment_mix
from loadtests.locust_products import HOT_SKU, create_products, shelves

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


def choose_scenarios(environment: Environment, **_: Any) -> None:
    """Only the scenarios `--tags` picked are spawned (Locust would spawn the others with no
    task to run); `--buyers B` makes exactly B of the users buyers."""
    environment._filter_tasks_by_tags()
    environment.user_classes[:] = [cls for cls in environment.user_classes if cls.tasks]
    if environment.parsed_options is not None and environment.parsed_options.buyers:
        Buyers.fixed_count = environment.parsed_options.buyers


# Locust's listener decorators are untyped; registering by call keeps these functions typed.
events.init_command_line_parser.add_listener(add_options)  # type: ignore[no-untyped-call]
events.test_start.add_listener(create_products)  # type: ignore[no-untyped-call]
events.init.add_listener(choose_scenarios)  # type: ignore[no-untyped-call]


# How long a user who is done waits: for the rest of the run. A user that stopped would be
# replaced by a new one while Locust is still ramping up, and the run would have more distinct
# buyers than --users; one that lingers keeps the count exact and costs an idle greenlet.
LINGER_SECONDS = 10.0**6
# A buyer's token lasts 15 minutes; a new one is minted when this one is this old.
RENEW_TOKEN_SECONDS = 10 * 60.0
__all__ = ["Bots"]  # Locust spawns the User classes it finds here, the bots among them


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
        body: dict[str, Any] = {"items": [{"sku": s, "quantity": q} for s, q in lines]}
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        if customer_id:
            body["customer_id"] = customer_id
            headers.update(self.authorization())
        with self.client.post(
            "/v1/reservations", json=body, headers=headers, name="reserve", catch_response=True
        ) as response:
            if response.status_code == 201:
                reservation_id = str(response.json()["id"])
                remember_hold(reservation_id)
                return reservation_id
            refusal = refusal_name(response, "reserve")
            if refusal is None:
                response.failure(answered(response))
                return None
            response.request_meta["name"] = refusal
            response.success()
            return None


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


class Crowd(SaleUser):
    """Everybody wants the one hot SKU, now; a refusal is the common answer."""

    weight = 1
    pause = between(0.2, 1.0)

    @tag("crowd")
    @task
    def grab(self) -> None:
        self.reserve([(HOT_SKU, 1)], self.customer_id)


class Shoppers(SaleUser):
    """Carts of 1-3 lines across the SKUs, some over the per-customer limit."""

    weight = 1

    @tag("shoppers")
    @task
    def cart(self) -> None:
        # A cart holds SKUs of one pool (a cart spanning pools is refused by design).
        pools = list(shelves(self.parsed).values())
        hot = len(pools) == 1 or random.random() < self.parsed.hot_share
        shelf = next(skus for skus in pools if HOT_SKU in skus) if hot else random.choice(pools)
        others = [sku for sku in shelf if sku != HOT_SKU]
        lines: dict[str, int] = {}
        for _ in range(random.randint(1, 3)):
            pick_hot = HOT_SKU in shelf and (not others or random.random() < self.parsed.hot_share)
            sku = HOT_SKU if pick_hot else random.choice(others)
            lines[sku] = lines.get(sku, 0) + random.choice((1, 1, 1, 2, 3))
        self.reserve(sorted(lines.items()), self.customer_id)


class Abandoners(SaleUser):
    """Hold, then walk away: the units come back when the hold lapses."""

    weight = 1

    @tag("abandoners")
    @task
    def hold_and_leave(self) -> None:
        if not self.gone:
            self.reserve([(HOT_SKU, 1)], self.customer_id)
        self.leave()


class Browsers(SaleUser):
    """Refresh the product page and the catalog."""

    weight = 2
    pause = between(0.1, 0.5)

    @tag("browsers")
    @task(3)
    def product(self) -> None:
        self.client.get(f"/v1/products/{HOT_SKU}", name="product")

    @tag("browsers")
    @task
    def catalog(self) -> None:
        self.client.get("/v1/products", name="products")


class Buyers(SaleUser):
    """The whole purchase, once per buyer: reserve (retrying while sold out, within
    `--patience`), check out, pay on the simulator as the mix says, wait for the final order."""

    weight = 6
    pause = between(1.0, 3.0)  # a person refreshing a sold-out page

    def on_start(self) -> None:
        super().on_start()
        self.arrived = time.monotonic()
        self.outcomes, self.weights = payment_mix(self.parsed.payment_mix)

    @tag("buyers")
    @task
    def buy(self) -> None:
        if self.gone:
            return
        if time.monotonic() - self.arrived > self.parsed.patience:
            self.leave()  # gave up: the drop sold out for good
            return
        reservation_id = self.reserve([(HOT_SKU, 1)], self.customer_id)
        if reservation_id is None:
            return  # sold out for now: units come back from declines, cancels and abandons
        session = self.checkout(reservation_id)
        if session is not None:
            outcome = random.choices(self.outcomes, self.weights)[0]
            self.pay(session, outcome)
            self.await_final(reservation_id, session, outcome)
        self.leave()  # one purchase per buyer

    def checkout(self, reservation_id: str) -> str | None:
        with self.client.post(
            "/v1/checkout",
            json={"reservation_id": reservation_id},
            headers=self.authorization(),
            name="checkout",
            catch_response=True,
        ) as response:
            if response.status_code == 201:
                return str(response.json()["checkout_session_id"])
            if response.status_code == 409:  # the hold lapsed meanwhile
                response.request_meta["name"] = "checkout: hold lapsed"
                response.success()
                return None
            refusal = refusal_name(response, "checkout")
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


class SaleShape(LoadTestShape):
    """Users arrive within `--spike-seconds` (else at `--spawn-rate`), stay, and leave over
    the last `--leave-seconds` (default: `--spike-seconds`) of `--run-time`; the run ends at
    `--run-time`."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        parsed: Any = self.runner.environment.parsed_options
        peak = int(parsed.num_users or 1)
        ramp = float(parsed.spike_seconds or 0)
        run_time = float(parsed.run_time or 0)
        elapsed = time.perf_counter() - self.start_time
        if run_time and elapsed >= run_time:
            return None
        if ramp <= 0:
            return peak, float(parsed.spawn_rate or peak)
        leave = ramp if parsed.leave_seconds < 0 else float(parsed.leave_seconds)
        if run_time and leave > 0 and elapsed >= max(ramp, run_time - leave):
            return 0, peak / leave
        return peak, peak / ramp
