"""One process of the service's Stripe gate, for tests/test_stripe_rate.py.

Configured by the environment as the service is (REDIS_URL, RESERVATION_KEY_PREFIX, STRIPE_*),
it builds the gate as `reservation serve` does, prints `ready`, waits for a line on stdin, then
makes `--calls` Stripe calls at once through the gate and prints how many were answered and
how many the gate refused (503), as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import stripe

from domain.errors import PaymentProviderUnavailable
from reservation.payments.gate import StripeGate, stripe_client
from reservation.services import redis_client
from reservation.settings import Settings
from tests.stripe_fake import aclose_client


async def _call(gate: StripeGate, client: stripe.StripeClient) -> bool:
    try:
        await gate.call(client.v1.checkout.sessions.list_async, action="list sessions")
    except PaymentProviderUnavailable:
        return False
    return True


async def run(calls: int) -> dict[str, int]:
    settings = Settings.from_env()
    redis = redis_client(settings)
    client, http_client = stripe_client(settings)
    gate = StripeGate.from_settings(settings, redis)
    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        answered = await asyncio.gather(*(_call(gate, client) for _ in range(calls)))
    finally:
        await aclose_client(http_client)
        await redis.aclose()
    return {"answered": sum(answered), "refused": calls - sum(answered)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, required=True)
    print(json.dumps(asyncio.run(run(parser.parse_args().calls))), flush=True)


if __name__ == "__main__":
    main()
