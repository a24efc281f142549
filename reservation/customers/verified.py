"""Tokens this process verified a moment ago: a buyer sends the same token with each request
(its hold, its checkout, its reads), and a repeat costs a dict lookup instead of a
verification (PyJWT's HS256 check costs a fifth of a reserve's server time; bench_http).

An entry lasts until its token's `exp` plus the leeway, exactly as long as `jwt.decode` would
accept the token again, and the oldest entry leaves first when the memory is full. What a
repeat skips is a check whose answer cannot have changed: the signature of the same bytes, and
the claims of the same token. (A key a JWKS stops listing is no longer asked for its tokens
verified before: they keep working until their `exp`, as a shop's short-lived tokens do.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

# About 4 MB of tokens at the most (a few hundred bytes each).
MAX_TOKENS = 10_000


class VerifiedTokens:
    """token → its verified customer id, until the token lapses."""

    def __init__(
        self, leeway_seconds: float, size: int = MAX_TOKENS, clock: Callable[[], float] = time.time
    ) -> None:
        self.leeway = leeway_seconds
        self.size = size
        self.clock = clock
        self._entries: dict[str, tuple[str, float]] = {}

    def subject(self, token: str) -> str | None:
        """The customer id of a token verified before and not yet lapsed; None otherwise."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        subject, lapses_at = entry
        if self.clock() < lapses_at:
            return subject
        del self._entries[token]
        return None

    def keep(self, token: str, subject: str, expires_at: float) -> None:
        """Remember a token that verified, with its `exp` (seconds since the epoch)."""
        if len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]  # the oldest
        self._entries[token] = (subject, expires_at + self.leeway)
