"""Idempotency-Key: a POST replays its first answer for 24 hours, never runs twice."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from stripesim.errors import JsonObject, StripeError

KEY_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Answer:
    """The first answer given under a key, and what it answered."""

    endpoint: str
    fingerprint: str
    status: int
    body: JsonObject
    request_id: str
    created: float


def _mismatch(message: str, key: str) -> StripeError:
    return StripeError(
        400,
        "idempotency_error",
        f"{message} Try using a key other than '{key}' if you meant to execute a different "
        "request.",
    )


def fingerprint(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


class IdempotencyKeys:
    """Answers kept by key. Only successes are kept: like Stripe, a request refused by
    validation may be retried under the same key once it is fixed."""

    def __init__(self) -> None:
        self._answers: dict[str, Answer] = {}

    def replay(self, key: str, endpoint: str, params: dict[str, Any], now: float) -> Answer | None:
        """The answer to replay for this key, None if it is new; a mismatch is refused."""
        if len(key) > MAX_KEY_LENGTH:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Keys for idempotent requests can be no longer than {MAX_KEY_LENGTH} characters.",
            )
        answer = self._answers.get(key)
        if answer is None or answer.created < now - KEY_SECONDS:
            return None
        if answer.endpoint != endpoint:
            raise _mismatch(
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{endpoint}' vs '{answer.endpoint}').",
                key,
            )
        if answer.fingerprint != fingerprint(params):
            raise _mismatch(
                "Keys for idempotent requests can only be used with the same parameters they "
                "were first used with.",
                key,
            )
        return answer

    def remember(self, key: str, answer: Answer) -> None:
        self._answers.pop(key, None)  # keep the dict in the order the answers were given
        self._answers[key] = answer

    def forget_expired(self, now: float) -> None:
        """Drop keys older than 24 hours: the oldest come first, so stop at the first kept."""
        while self._answers:
            oldest = next(iter(self._answers))
            if self._answers[oldest].created >= now - KEY_SECONDS:
                return
            del self._answers[oldest]
