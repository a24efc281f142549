"""The bytes of request bodies one process holds while they arrive, bounded for all requests
together (RESERVATION_MAX_BODY_BYTES_IN_FLIGHT).

Each route bounds its own body (64 KiB; the Stripe webhook 1 MiB), but nothing bounded how
many such bodies a process buffers at once: 300 clients sending just under 1 MiB of a webhook
body and then stalling held 300 MiB until the body deadline, and a process takes up to
RESERVATION_MAX_CONCURRENT_REQUESTS (4,096) requests. `read_body` takes each chunk from this
budget as it arrives, before keeping it, and gives everything back when it returns or fails
(a client gone, a deadline, a refusal, a cancellation); a chunk the budget cannot take ends
the request with 503 `server_busy` instead of being kept.

Bytes are counted as they arrive, not as a `Content-Length` declares them: a head declaring
1 MiB costs its client a few hundred bytes, so reserving the declared length would let a
handful of heads that never send their body hold the whole budget. A declared length larger
than what is free is still refused at once, without reading anything.

One process, one event loop: no lock.
"""

from __future__ import annotations


class BodyBudget:
    """A count of the body bytes this process holds, at most `limit`."""

    __slots__ = ("held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    @property
    def free(self) -> int:
        """The bytes that may still be taken."""
        return self.limit - self.held

    def take(self, size: int) -> bool:
        """Count `size` more bytes as held; False, and nothing counted, past the limit."""
        held = self.held + size
        if held > self.limit:
            return False
        self.held = held
        return True

    def give_back(self, size: int) -> None:
        """Bytes taken earlier are no longer held."""
        self.held -= size
