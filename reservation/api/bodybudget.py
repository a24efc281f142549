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

One client address (the rate limit's, reservation/api/client_address.py) may hold at most a
`CLIENT_SHARES`th of the budget, so that one client stalling bodies cannot spend it for all
the others: with the default 64 MiB, 8 MiB, eight of the largest (webhook) bodies at once.

One process, one event loop: no lock.
"""

from __future__ import annotations

CLIENT_SHARES = 8


class BodyBudget:
    """A count of the body bytes this process holds, at most `limit`, and at most `share` of
    them for one client address."""

    __slots__ = ("by_client", "held", "limit", "share")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.share = limit // CLIENT_SHARES
        self.held = 0
        self.by_client: dict[str, int] = {}

    def free(self, client: str) -> int:
        """The bytes `client` may still take."""
        return min(self.limit - self.held, self.share - self.by_client.get(client, 0))

    def take(self, size: int, client: str) -> bool:
        """Count `size` more bytes as held by `client`; False, and nothing counted, past the
        process's limit or the client's share."""
        held = self.held + size
        mine = self.by_client.get(client, 0) + size
        if held > self.limit or mine > self.share:
            return False
        self.held = held
        self.by_client[client] = mine
        return True

    def give_back(self, size: int, client: str) -> None:
        """Bytes `client` took earlier are no longer held."""
        if not size:
            return
        self.held -= size
        left = self.by_client[client] - size
        if left:
            self.by_client[client] = left
        else:
            del self.by_client[client]
