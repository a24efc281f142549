"""Signed webhook delivery: `Stripe-Signature` made as Stripe makes it, retried on failure."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable

import httpx

from stripesim.errors import JsonObject
from stripesim.settings import SimSettings

logger = logging.getLogger("reservation.stripesim")
# The signing times kept (see WebhookSender._timestamp) before the old ones are dropped.
SIGNED_AT_LIMIT = 10_000


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header for `payload`: `t=<ts>,v1=<HMAC-SHA256 of "<ts>.<body>">`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def encode_event(event: JsonObject) -> bytes:
    """An event's body as Stripe sends it (pretty-printed JSON)."""
    return json.dumps(event, indent=2).encode()


class WebhookSender:
    """Delivers each event in its own task: a few attempts with doubling pauses until a 2xx.

    Every attempt is signed afresh, as Stripe signs each one ("a new signature and timestamp
    for the new delivery attempt"): an attempt never repeats the timestamp of an earlier
    attempt of the same event, waiting for the next second when it would (a duplicate sent at
    once, a retry within the second), so the receiver never sees the same signed bytes twice.
    Any answer other than a 2xx (a 400 too) is a failed attempt, tried again later.

    `record` receives one entry per attempt (status or error) for `GET /_sim/deliveries`.
    """

    def __init__(self, settings: SimSettings, record: Callable[[JsonObject], None]) -> None:
        assert settings.webhook_url is not None
        assert settings.webhook_secret is not None
        self.url = settings.webhook_url
        self.secret = settings.webhook_secret
        self.settings = settings
        self.record = record
        self.http = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds)
        self.tasks: set[asyncio.Task[None]] = set()
        self.random = random.Random(settings.chaos_seed)
        # event id -> the timestamp its latest attempt was signed with
        self.signed_at: dict[str, int] = {}

    def submit(self, event: JsonObject) -> None:
        """Start delivering `event` (call on the server's event loop): once, or twice for the
        configured share of events, each after its own random delay when chaos is on."""
        copies = 2 if self.random.random() < self.settings.duplicate_share else 1
        for copy in range(1, copies + 1):
            delay = self.random.uniform(0, self.settings.delivery_delay_seconds)
            delivery = self._deliver(event, delay, {"copy": copy, "copies": copies})
            task = asyncio.get_running_loop().create_task(delivery)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _deliver(self, event: JsonObject, delay: float, copy: JsonObject) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        body = encode_event(event)
        for attempt in range(1, self.settings.webhook_attempts + 1):
            if await self._attempt(event, body, attempt, copy):
                return
            if attempt < self.settings.webhook_attempts:
                await asyncio.sleep(self.settings.webhook_retry_seconds * 2 ** (attempt - 1))

    async def _timestamp(self, event_id: str) -> int:
        """Now, in whole seconds, once no earlier attempt of this event was signed with it."""
        while True:
            now = time.time()
            last = self.signed_at.get(event_id)
            if last is None or int(now) > last:
                if len(self.signed_at) >= SIGNED_AT_LIMIT:
                    # Only attempts signed this second still matter.
                    self.signed_at = {k: t for k, t in self.signed_at.items() if t >= int(now)}
                self.signed_at[event_id] = int(now)
                return int(now)
            await asyncio.sleep(last + 1 - now)

    async def _attempt(
        self, event: JsonObject, body: bytes, attempt: int, copy: JsonObject
    ) -> bool:
        timestamp = await self._timestamp(event["id"])
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(body, self.secret, timestamp),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        entry: JsonObject = {
            "event_id": event["id"],
            "type": event["type"],
            "url": self.url,
            "attempt": attempt,
            **copy,  # which delivery of the event this is, of how many (chaos sends two)
            "status": None,
            "error": None,
            "ok": False,
            "time": time.time(),  # when the attempt was sent
            "answered": None,  # when its answer (or its failure) came
        }
        try:
            response = await self.http.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        else:
            entry["status"] = response.status_code
            entry["ok"] = response.is_success
        entry["answered"] = time.time()
        if not entry["ok"]:
            logger.info("delivering %s (attempt %d) failed: %s", event["id"], attempt, entry)
        self.record(entry)
        return bool(entry["ok"])

    async def aclose(self) -> None:
        """Stop: deliveries still in flight are abandoned, as on a crash."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.http.aclose()
