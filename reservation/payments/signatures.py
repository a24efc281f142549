"""The Stripe-Signature of a webhook delivery: its timestamp within the tolerance, either way,
and its v1 signature of the body (HMAC-SHA256 with the endpoint's secret)."""

from __future__ import annotations

import re

import stripe

from domain import errors

TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE
SCHEME = stripe.WebhookSignature.EXPECTED_SCHEME  # v1: HMAC-SHA256, in lowercase hex
SIGNATURE = re.compile(r"[0-9a-f]{64}")
DIGITS = re.compile(r"[0-9]+")
# A `t` of more digits is far past any clock (10 digits last until the year 2286), and
# int() refuses strings of more than 4,300 digits.
MAX_TIMESTAMP_DIGITS = 15


def verify(text: str, header: str, secret: str, now: float) -> int:
    """The header is well formed, its timestamp within the tolerance of `now`, past or
    future, and its signature matches `text`: the timestamp that was verified."""
    timestamp = signature_timestamp(header, now)
    try:
        # The time window was checked above, both ways (stripe-python checks the past only,
        # and a timestamp ahead of the clock would let a captured delivery be replayed until
        # then); the library checks the signature.
        stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
    except stripe.SignatureVerificationError:
        raise errors.InvalidSignature("the Stripe-Signature does not match the body") from None
    return timestamp


def signature_timestamp(header: str, now: float) -> int:
    """The timestamp of a Stripe-Signature that may verify a body, within the tolerance of
    `now` either way; else InvalidSignature saying what is wrong.

    The header is read as stripe-python reads it (items split on `,`, each named by what
    precedes its first `=`; the first named exactly `t` is the timestamp, every `v1` a
    signature), and held to what Stripe sends (`t=<seconds>,v1=<64 hex>[,v1=…][,v0=…]`):
    exactly one `t`, in digits, so that the timestamp checked here is the one the library
    signs with, and at least one `v1`, each 64 lowercase hex digits as the library computes
    them. What the library would also take (`t=+1`, `t= 1`, `t=1=x`) no signature of
    Stripe's carries.
    """
    if not header:
        raise errors.InvalidSignature("the Stripe-Signature header is missing")
    if not header.isascii():  # the library's constant-time comparison takes ASCII only
        raise errors.InvalidSignature("the Stripe-Signature header is not ASCII")
    stamps: list[str] = []
    signatures = 0
    for item in header.split(","):
        name, _, value = item.partition("=")
        if name == "t":
            stamps.append(value)
        elif name == SCHEME:
            if not SIGNATURE.fullmatch(value):
                raise errors.InvalidSignature(
                    f"a {SCHEME} signature of the Stripe-Signature is not 64 lowercase "
                    f"hexadecimal digits: {value[:80]!r}"
                )
            signatures += 1
    if not stamps:
        raise errors.InvalidSignature("the Stripe-Signature has no timestamp (t=)")
    if len(stamps) > 1:
        raise errors.InvalidSignature("the Stripe-Signature has more than one timestamp (t=)")
    if not DIGITS.fullmatch(stamps[0]):
        raise errors.InvalidSignature(
            "the Stripe-Signature timestamp (t) is not a whole number of seconds: "
            f"{stamps[0][:80]!r}"
        )
    if not signatures:
        raise errors.InvalidSignature(f"the Stripe-Signature has no {SCHEME} signature")
    significant = stamps[0].lstrip("0")
    if len(significant) > MAX_TIMESTAMP_DIGITS:  # beyond any clock; int() would refuse it
        raise errors.InvalidSignature(
            "the Stripe-Signature timestamp is ahead of this server's clock by more than "
            f"{TOLERANCE_SECONDS} s"
        )
    timestamp = int(significant or "0")
    if timestamp < now - TOLERANCE_SECONDS:
        raise errors.InvalidSignature(
            f"the Stripe-Signature timestamp is {now - timestamp:.0f} s old; at most "
            f"{TOLERANCE_SECONDS} s are accepted"
        )
    if timestamp > now + TOLERANCE_SECONDS:
        raise errors.InvalidSignature(
            f"the Stripe-Signature timestamp is {timestamp - now:.0f} s ahead of this server's "
            f"clock; at most {TOLERANCE_SECONDS} s are accepted"
        )
    return timestamp
