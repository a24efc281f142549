"""The simulator's objects, kept as the JSON Stripe answers with, and the events about them."""

from __future__ import annotations

import copy
import secrets
import string
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from stripesim.errors import JsonObject, invalid
from stripesim.params import Params

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """An id shaped like Stripe's: `cs_test_a1B2…`, `pi_3N…`, `evt_1N…`."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class Origin:
    """The API request that caused an event (Stripe's `event.request`)."""

    request_id: str | None = None
    idempotency_key: str | None = None


@dataclass
class Store:
    api_version: str
    sessions: dict[str, JsonObject] = field(default_factory=dict)
    line_items: dict[str, list[JsonObject]] = field(default_factory=dict)
    # `payment_intent_data[metadata]` by session: the payment intent gets it when one is made.
    intent_metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    payment_intents: dict[str, JsonObject] = field(default_factory=dict)
    charges: dict[str, JsonObject] = field(default_factory=dict)
    # (expires_at, session id), a heap: what the expiry sweep looks at first.
    expiry: list[tuple[int, str]] = field(default_factory=list)
    refunds: dict[str, JsonObject] = field(default_factory=dict)
    events: deque[JsonObject] = field(default_factory=deque)
    listeners: list[Callable[[JsonObject], None]] = field(default_factory=list)

    def emit(
        self, type_: str, obj: JsonObject, now: float, origin: Origin | None = None
    ) -> JsonObject:
        """Record an event with a snapshot of `obj` and hand it to the listeners (webhooks)."""
        event: JsonObject = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": self.api_version,
            "created": int(now),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {
                "id": origin.request_id if origin else None,
                "idempotency_key": origin.idempotency_key if origin else None,
            },
            "type": type_,
        }
        self.events.append(event)
        for listener in self.listeners:
            listener(event)
        return event


def page(newest_first: list[JsonObject], params: Params, url: str) -> JsonObject:
    """One page of a list, Stripe's way: `limit` (1-100, default 10), `starting_after`,
    `ending_before` (object ids), newest first."""
    limit = params.integer("limit", minimum=1)
    if limit is None:
        limit = 10
    if limit > 100:
        raise invalid("This value must be less than or equal to 100.", "limit")
    ids = [obj["id"] for obj in newest_first]
    after = params.string("starting_after")
    before = params.string("ending_before")
    lower = 0 if after is None else _position(ids, after, "starting_after") + 1
    stop = len(ids) if before is None else _position(ids, before, "ending_before")
    if before is None:
        start, has_more = lower, lower + limit < stop
    else:  # the page just before `ending_before`; "more" are the newer ones
        start = max(lower, stop - limit)
        has_more = start > lower
    data = newest_first[start : min(stop, start + limit)]
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _position(ids: list[str], object_id: str, param: str) -> int:
    try:
        return ids.index(object_id)
    except ValueError:
        raise invalid(f"No such object: '{object_id}'", param, "resource_missing") from None
