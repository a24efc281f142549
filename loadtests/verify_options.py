"""The verifier's command line (`python -m loadtests.verify`, loadtests/verify.py): every
option defaults to the service's own environment variable."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from reservation.settings import Settings


def parse_args(
    argv: Sequence[str] | None = None, description: str | None = None
) -> tuple[Settings, argparse.Namespace]:
    """The settings to read with, and the options: whether the merchant's refunds are
    expected, the Locust stats whose bots are checked, whether the rooms are."""
    base = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m loadtests.verify", description=description)
    parser.add_argument("--redis-url", default=base.redis_url)
    parser.add_argument("--mongodb-uri", default=base.mongodb_uri)
    parser.add_argument("--mongodb-database", default=base.mongodb_database)
    parser.add_argument("--key-prefix", default=base.key_prefix)
    parser.add_argument(
        "--redis-cluster", action=argparse.BooleanOptionalAction, default=base.redis_cluster
    )
    parser.add_argument("--stripe-api-base", default=base.stripe_api_base)
    parser.add_argument(
        "--restock-on-refund",
        action=argparse.BooleanOptionalAction,
        default=base.restock_on_refund,
        help="refunded orders count as sold unless refunds restock (as the service runs)",
    )
    parser.add_argument(
        "--merchant-refunds",
        action="store_true",
        help="the merchant refunded payments too (as from the Dashboard): such refunds are "
        "expected, and each must show on its order",
    )
    parser.add_argument(
        "--locust-stats",
        type=Path,
        default=None,
        help="a sale's Locust stats CSV: its bots' attempts must all have been refused",
    )
    parser.add_argument(
        "--waiting-room",
        action="store_true",
        help="check every SKU's waiting room from its admissions log (read at PUBLIC_URL with"
        " RESERVATION_ADMIN_TOKEN)",
    )
    add_waitlist_options(parser)
    args = parser.parse_args(argv)
    if args.waitlist and args.shop_events is None:
        parser.error("--waitlist needs --shop-events FILE")
    if not args.redis_url or not args.mongodb_uri:
        parser.error(
            "Redis and MongoDB are needed: --redis-url/REDIS_URL, --mongodb-uri/MONGODB_URI"
        )
    settings = Settings(
        redis_url=args.redis_url,
        redis_cluster=args.redis_cluster,
        mongodb_uri=args.mongodb_uri,
        mongodb_database=args.mongodb_database,
        key_prefix=args.key_prefix,
        stripe_api_base=args.stripe_api_base,
        stripe_secret_key=base.stripe_secret_key,
        restock_on_refund=args.restock_on_refund,
        public_url=base.public_url,
        admin_token=base.admin_token,
    )
    return settings, args


def add_waitlist_options(parser: argparse.ArgumentParser) -> None:
    """--waitlist and the shop receiver's record it reads."""
    parser.add_argument(
        "--waitlist",
        action="store_true",
        help="check the waiting lists (loadtests/verify_waitlist.py); needs --shop-events",
    )
    parser.add_argument(
        "--shop-events",
        type=Path,
        default=None,
        help="the shop receiver's record (loadtests/shop_receiver.py): what the shop got",
    )
