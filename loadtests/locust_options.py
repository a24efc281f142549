"""The flash sale's options on Locust's command line (loadtests/locustfile.py registers them),
and the buyers' payment mix they give."""

from __future__ import annotations

import os
from typing import Any

from locust.env import Environment

from harness.customer_tokens import SECRET_VARIABLE

PAYMENTS = ("paid", "declined", "delayed_paid", "delayed_failed", "cancelled")
DEFAULT_MIX = "paid=70,declined=10,delayed_paid=10,delayed_failed=5,cancelled=5"


def add_options(parser: Any) -> None:
    """The "flash sale" group of Locust's options (an init_command_line_parser listener)."""
    group = parser.add_argument_group("flash sale")
    group.add_argument("--skus", type=int, default=20, help="SKUs besides the hot one")
    group.add_argument(
        "--stock", type=int, default=0, help="units of each SKU, created at start (0: none)"
    )
    group.add_argument("--hot-stock", type=int, default=0, help="units of the hot SKU (0: --stock)")
    group.add_argument(
        "--limit", type=int, default=2, help="max_per_customer of the other SKUs (0: none)"
    )
    group.add_argument(
        "--hot-share", type=float, default=0.8, help="share of shoppers' lines on the hot SKU"
    )
    group.add_argument(
        "--payment-mix",
        default=DEFAULT_MIX,
        help=f"buyers' outcomes as name=weight ({', '.join(PAYMENTS)})",
    )
    group.add_argument(
        "--pools",
        default="",
        help="comma-separated pools the other SKUs are spread over (none: all in the hot SKU's)",
    )
    group.add_argument("--hot-pool", default="", help="the hot SKU's pool (none: default)")
    group.add_argument("--sim-url", default="http://127.0.0.1:12111", help="Stripe simulator")
    group.add_argument("--admin-token", default="", help="creates products; buyers poll orders")
    group.add_argument(
        "--patience", type=float, default=60.0, help="how long a buyer keeps trying, seconds"
    )
    group.add_argument(
        "--spike-seconds", type=float, default=0.0, help="arrive (and leave) within this long"
    )
    group.add_argument(
        "--leave-seconds",
        type=float,
        default=-1.0,
        help="leave over the last this long of --run-time (default: --spike-seconds; 0: stay)",
    )
    group.add_argument(
        "--buyers", type=int, default=0, help="this many of the users are buyers (0: by weight)"
    )
    group.add_argument(
        "--customer-token-secret",
        default="",
        help=f"the shop's secret: every buyer's token is signed with it (default: {SECRET_VARIABLE}"
        " from the environment, which keeps it off the command line; none: buyers send no token)",
    )
    group.add_argument(
        "--arrival-jitter",
        type=float,
        default=1.0,
        help="a new user waits up to this long (at random) before its first request: Locust "
        "spawns a second's worth of users at once, and they would otherwise all ask at once",
    )
    add_room_options(parser)
    add_catalog_options(parser)


def add_catalog_options(parser: Any) -> None:
    """The "existing catalog" group: the SKUs targeted when the run creates none."""
    group = parser.add_argument_group("existing catalog (without --admin-token and --stock)")
    group.add_argument(
        "--hot-sku",
        default="",
        help="the catalog's hot SKU (none: the scarcest product on sale)",
    )
    group.add_argument(
        "--other-skus",
        default="",
        help="the catalog's other SKUs, comma-separated "
        "(none: every other product on sale without a waiting room)",
    )


def add_waitlist_options(parser: Any) -> None:
    """The "waiting list" group (another init_command_line_parser listener)."""
    parser.add_argument_group("waiting list (the waitlist scenario)").add_argument(
        "--offer-mix",
        default="buy=60,give_back=20,lapse=20",
        help="what waiters do with an offer, as name=weight (buy, give_back, lapse)",
    )


def add_room_options(parser: Any) -> None:
    """The "waiting room" group: the room and sale start every SKU is created with."""
    group = parser.add_argument_group("waiting room (the fair-start scenario)")
    group.add_argument(
        "--admit-per-second",
        type=int,
        default=0,
        help="each SKU's waiting_room.admit_per_second (0: no waiting room)",
    )
    group.add_argument("--max-active", type=int, default=100, help="waiting_room.max_active")
    group.add_argument(
        "--admission-seconds", type=int, default=120, help="waiting_room.admission_seconds"
    )
    group.add_argument(
        "--start-in",
        type=float,
        default=-1.0,
        help="each SKU's sale_starts_at this many seconds after the test starts (< 0: none)",
    )


def customer_token_secret(parsed: Any) -> str:
    """The secret buyers' tokens are signed with ("": none)."""
    return str(parsed.customer_token_secret or os.environ.get(SECRET_VARIABLE, ""))


def options(environment: Environment) -> Any:
    """Locust's parsed options, the sale's among them."""
    return environment.parsed_options


def payment_mix(text: str) -> tuple[list[str], list[float]]:
    """`paid=70,declined=10,...` as outcomes and weights; unknown names are refused."""
    names, weights = [], []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in PAYMENTS:
            raise ValueError(f"unknown payment outcome {name!r}: one of {', '.join(PAYMENTS)}")
        names.append(name)
        weights.append(float(weight or 1))
    if not names or sum(weights) <= 0:
        raise ValueError("the payment mix needs at least one outcome with a weight")
    return names, weights
