"""A flash sale under Locust: a crowd, shoppers, buyers who pay, abandoners, browsers, bots and
a fair-start crowd in a waiting room.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 --headless \\
        --users 2000 --run-time 60s --tags crowd buyers \\
        --sim-url http://127.0.0.1:12111 --admin-token TOKEN --stock 100

Pick scenarios with Locust's tags (`--tags crowd shoppers buyers abandoners browsers bots
fair-start waitlist`; none: all of them). `waitlist` (loadtests/locust_waitlist.py): a first
wave of `--hot-stock` buyers sells the hot SKU out, waiters join its waiting list and take their
offers (`--offer-mix`), a public crowd keeps asking. `fair-start` (loadtests/locust_room.py)
waits in the hot SKU's waiting room: with `--admit-per-second N` (and `--max-active`,
`--admission-seconds`) every SKU is created with a room, with `--start-in S` its sale starts
S seconds after the test starts.
Sizes come from Locust's own `--users`, `--spawn-rate` and `--run-time` and from the options
below (`--skus`, `--stock`, `--hot-share`, `--payment-mix`, `--spike-seconds` ...).
With `--admin-token` and `--stock`, the products are created at the start (a hot SKU and
`--skus` others). Without them the scenarios target the catalog the service has (read from
`GET /v1/products` at the start: `--hot-sku`, default the scarcest product on sale without a
waiting room; `--other-skus`, default the other products on sale without one), so
`locust -f loadtests/locustfile.py --host URL --tags crowd browsers` runs against any
deployment or the demo. Buyers pay through the Stripe simulator's programmatic endpoints
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

import functools
import random
import time
from typing import Any

from locust import LoadTestShape, argument_parser, between, events, runners, tag, task
from locust.env import Environment

from loadtests.locust_arrival import spawned, test_started
from loadtests.locust_bots import Bots
from loadtests.locust_options import add_options, add_waitlist_options
from loadtests.locust_products import CATALOG, choose_products
from loadtests.locust_room import FairStart
from loadtests.locust_sale import Paying, SaleUser
from loadtests.locust_waitlist import Waiters, WaitlistCrowd, WaitlistFirst


def choose_scenarios(environment: Environment, **_: Any) -> None:
    """Only the scenarios `--tags` picked are spawned (Locust would spawn the others with no
    task to run); `--buyers B` makes exactly B of the users buyers."""
    environment._filter_tasks_by_tags()
    environment.user_classes[:] = [cls for cls in environment.user_classes if cls.tasks]
    parsed = environment.parsed_options
    if parsed is not None and parsed.buyers:
        Buyers.fixed_count = parsed.buyers
    if parsed is not None and "waitlist" in (parsed.tags or []):
        WaitlistFirst.fixed_count = parsed.hot_stock or parsed.stock or 1


# With --processes, the master counts a worker that missed 3 heartbeats (1 s apart) as gone,
# and stops the test when none is left. A worker spawning a spike's users by the thousand each
# second, at nice 10 on a busy machine, can miss that many and still be running: allow 60 s.
runners.HEARTBEAT_LIVENESS = 60
# A worker handling a spawn message builds Locust's whole argument parser again for every one
# of the ~80 options the master sent (argument_parser.default_args_dict, profiled: 14 % of a
# worker's CPU while a spike spawns). The defaults never change within a run: build them once.
argument_parser.default_args_dict = functools.cache(argument_parser.default_args_dict)

# Locust's listener decorators are untyped; registering by call keeps these functions typed.
events.init_command_line_parser.add_listener(add_options)  # type: ignore[no-untyped-call]
events.init_command_line_parser.add_listener(add_waitlist_options)  # type: ignore[no-untyped-call]
events.test_start.add_listener(choose_products)  # type: ignore[no-untyped-call]
events.init.add_listener(choose_scenarios)  # type: ignore[no-untyped-call]
events.test_start.add_listener(test_started)  # type: ignore[no-untyped-call]
events.spawning_complete.add_listener(spawned)  # type: ignore[no-untyped-call]


# Locust spawns the User classes it finds here: bots, fair-start, the waiting list's three.
__all__ = ["Bots", "FairStart", "Waiters", "WaitlistCrowd", "WaitlistFirst"]


class Crowd(SaleUser):
    """Everybody wants the one hot SKU, now; a refusal is the common answer."""

    weight = 1
    pause = between(0.2, 1.0)

    @tag("crowd")
    @task
    def grab(self) -> None:
        self.reserve([(CATALOG.hot, 1)], self.customer_id)


class Shoppers(SaleUser):
    """Carts of 1-3 lines across the SKUs, some over the per-customer limit."""

    weight = 1

    @tag("shoppers")
    @task
    def cart(self) -> None:
        # A cart holds SKUs of one pool (a cart spanning pools is refused by design).
        pools = list(CATALOG.shelves.values())
        hot = len(pools) == 1 or random.random() < self.parsed.hot_share
        hot_sku = CATALOG.hot
        shelf = next(skus for skus in pools if hot_sku in skus) if hot else random.choice(pools)
        others = [sku for sku in shelf if sku != hot_sku]
        lines: dict[str, int] = {}
        for _ in range(random.randint(1, 3)):
            pick_hot = hot_sku in shelf and (not others or random.random() < self.parsed.hot_share)
            sku = hot_sku if pick_hot else random.choice(others)
            lines[sku] = lines.get(sku, 0) + random.choice((1, 1, 1, 2, 3))
        self.reserve(sorted(lines.items()), self.customer_id)


class Abandoners(SaleUser):
    """Hold, then walk away: the units come back when the hold lapses."""

    weight = 1

    @tag("abandoners")
    @task
    def hold_and_leave(self) -> None:
        if not self.gone:
            self.reserve([(CATALOG.hot, 1)], self.customer_id)
        self.leave()


class Browsers(SaleUser):
    """Refresh the product page and the catalog."""

    weight = 2
    pause = between(0.1, 0.5)

    @tag("browsers")
    @task(3)
    def product(self) -> None:
        self.client.get(f"/v1/products/{CATALOG.hot}", name="product")

    @tag("browsers")
    @task
    def catalog(self) -> None:
        self.client.get("/v1/products", name="products")


class Buyers(Paying):
    """The whole purchase, once per buyer: reserve (retrying while sold out, within
    `--patience`), check out, pay on the simulator as the mix says, wait for the final order."""

    weight = 6
    pause = between(1.0, 3.0)  # a person refreshing a sold-out page

    @tag("buyers")
    @task
    def buy(self) -> None:
        if self.gone:
            return
        if time.monotonic() - self.arrived > self.parsed.patience:
            self.leave()  # gave up: the drop sold out for good
            return
        reservation_id = self.reserve([(CATALOG.hot, 1)], self.customer_id)
        if reservation_id is None:
            return  # sold out for now: units come back from declines, cancels and abandons
        self.purchase(reservation_id)
        self.leave()  # one purchase per buyer


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
