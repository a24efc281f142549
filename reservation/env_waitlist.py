"""The environment variables of the waiting list and of the webhooks it sends the shop (a part
of reservation/env_variables.py's table, which lists them after the others)."""

from __future__ import annotations

from reservation.env_readers import Variable, count, http_url, seconds, seconds_or_off, secret

WAITLIST_VARIABLES: tuple[Variable, ...] = (
    Variable(
        "RESERVATION_OFFER_SECONDS",
        "offer_seconds",
        count,
        "how long an offer (units come back and are held for the customer at the head of a"
        " SKU's waiting list) waits for that customer's checkout",
    ),
    Variable(
        "RESERVATION_SHOP_WEBHOOK_URL",
        "shop_webhook_url",
        http_url,
        "where the shop receives the waiting list's webhooks (`waitlist.offer_created`,"
        " `waitlist.offer_lapsed`, see *Shop webhooks* in docs/api.md); needs"
        " `RESERVATION_SHOP_WEBHOOK_SECRET`",
        "none (events are kept in MongoDB, not sent)",
    ),
    Variable(
        "RESERVATION_SHOP_WEBHOOK_SECRET",
        "shop_webhook_secret",
        secret,
        "the secret the shop's webhooks are signed with (HMAC-SHA256, the"
        " `Reservation-Signature` header): 32 or more printable ASCII characters",
        "none",
    ),
    Variable(
        "RESERVATION_SHOP_WEBHOOK_TIMEOUT_SECONDS",
        "shop_webhook_timeout_seconds",
        seconds,
        "the longest one delivery to the shop may take; then it is a failed try, sent again later",
    ),
    Variable(
        "RESERVATION_OUTBOX_INTERVAL_SECONDS",
        "outbox_interval_seconds",
        seconds_or_off,
        "how often the outbox moves new offers and lapses from Redis to MongoDB and sends the"
        " due ones to the shop (one process at a time, under a lease of twice this plus the"
        " timeout; 0: off, events wait in Redis)",
    ),
)
