"""Every Redis key name of the project, built here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass, field

from reservation.settings import DEFAULT_PREFIX


@dataclass(frozen=True, slots=True)
class PoolKeys:
    """The keys of one pool; the braces make them share one Redis Cluster slot."""

    stock: str
    holds: str
    usage: str
    waitlist: str
    line: str
    # List: the offers made and lapsed in the pool, oldest first, until the outbox relay
    # moves them to MongoDB (domain/waitlist_events.py says each entry's text).
    outbox: str
    record_prefix: str
    fence: str
    # KEYS[1..6] of every pool script, in the order the scripts expect (built once: every
    # script call passes them): the stock, its holds and usage, and the waiting list's entries,
    # its line and its outbox (every script that gives units back offers them to the line).
    shared: tuple[str, str, str, str, str, str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "shared",
            (self.stock, self.holds, self.usage, self.waitlist, self.line, self.outbox),
        )

    def record(self, reservation_id: str) -> str:
        return self.record_prefix + reservation_id

    @property
    def records(self) -> str:
        """A SCAN pattern matching every reservation record of the pool (the verifier's)."""
        return self.record_prefix + "*"


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """The keys of one SKU's waiting room, under its pool's hash tag (reservation/lua/queue.lua
    says what each holds): KEYS[7..10] of the queue and room scripts; `admissions` and `live`
    are KEYS[8..9] of a reserve that carries one of its tokens."""

    line: str
    tickets: str
    live: str
    admissions: str

    @property
    def all(self) -> tuple[str, str, str, str]:
        return (self.line, self.tickets, self.live, self.admissions)


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Builds key names under one prefix (tests isolate themselves with their own)."""

    prefix: str = DEFAULT_PREFIX

    def pool(self, pool: str) -> PoolKeys:
        base = f"{self.prefix}:{{{pool}}}"
        return PoolKeys(
            stock=f"{base}:stock",
            holds=f"{base}:holds",
            usage=f"{base}:usage",
            waitlist=f"{base}:waitlist",
            line=f"{base}:line",
            outbox=f"{base}:outbox",
            record_prefix=f"{base}:res:",
            fence=f"{base}:fence",
        )

    def room(self, pool: str, sku: str) -> RoomKeys:
        """A SKU's waiting room in its pool; they expire a day after the room's last join or
        admission (queue.lua)."""
        base = f"{self.prefix}:{{{pool}}}:room:{sku}"
        return RoomKeys(
            line=f"{base}:line",
            tickets=f"{base}:tickets",
            live=f"{base}:live",
            admissions=f"{base}:admissions",
        )

    @property
    def sku_pools(self) -> str:
        """Hash sku -> pool: which pool each SKU is stocked in."""
        return f"{self.prefix}:sku-pools"

    @property
    def pools(self) -> str:
        """Set of every pool that has stock (the sweeper walks it)."""
        return f"{self.prefix}:pools"

    @property
    def built(self) -> str:
        """String: present once the counters were built beside MongoDB; an empty Redis lacks
        it, which is how a lost Redis is noticed (reservation.operations.recovery)."""
        return f"{self.prefix}:built"

    @property
    def rebuild_lock(self) -> str:
        """String: the process rebuilding lost counters holds it (one at a time)."""
        return f"{self.prefix}:rebuild-lock"

    @property
    def outbox_lease(self) -> str:
        """String: the process relaying and delivering the shop's webhooks holds it (one at a
        time); it lapses on its own when that process dies (reservation/operations/outbox.py)."""
        return f"{self.prefix}:outbox-lease"

    def idempotency(self, key_digest: str) -> str:
        """String: the reservation id an Idempotency-Key produced (24 hours)."""
        return f"{self.prefix}:idem:{key_digest}"

    def rate_log(self, scope: str, subject_digest: str) -> str:
        """Sorted set: the requests one client (a `scope`: "ip" or "customer") made in the
        rate limit's window (reservation.core.ratelimit). A digest names the client, so no address
        or customer id is stored, and no brace in a customer id makes a cluster hash tag."""
        return f"{self.prefix}:rate:{scope}:{subject_digest}"

    @property
    def stripe_rate(self) -> str:
        """Sorted set: the Stripe calls every process made in the last window of the shared
        Stripe rate (STRIPE_RATE_PER_SECOND; reservation.payments.gate), one member per call."""
        return f"{self.prefix}:stripe-rate"

    def webhook_delivery(self, timestamp: int, body_digest: str) -> str:
        """String: a webhook delivery received (its signed timestamp and the SHA-256 of its
        body, which together determine its signature), kept while that timestamp is within the
        tolerance; its presence refuses a replay."""
        return f"{self.prefix}:webhook:{timestamp}:{body_digest}"

    def pattern(self) -> str:
        """A SCAN pattern matching every key of this key space."""
        return f"{self.prefix}:*"
