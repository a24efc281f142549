"""The shop is told: outbox entries decoded, the event's body and signature, the retry
schedule; the relay from Redis to MongoDB (once each, whatever crashes between its steps); the
delivery to a shop that is down for a while (every event afterwards, per customer in order)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from domain.waitlist_events import MalformedOutboxEntry, OfferEvent, shop_event, signature_header
from harness.servers import free_port
from harness.shop_hooks import SIGNATURE_HEADER, ShopHooks, verify_signature
from persistence.mongo import Database
from persistence.outbox import ShopEventOutbox
from reservation.core.keys import KeySpace
from reservation.core.outbox import OutboxLease, OutboxList
from reservation.core.pools import PoolDirectory
from reservation.lua.library import RedisClient
from reservation.lua.outbox_entry import decode
from reservation.metrics import Metrics
from reservation.operations.outbox import ShopOutbox, event_body, retry_delay
from reservation.settings import Settings
from tests.stripe_fake import serve

SECRET = "shop-webhook-secret-of-the-tests-0123456789"
POOL = "drop"
REDIS_BACKENDS = ["redis", "fakeredis"]


def entry_text(
    seq: int, kind: str, token: str, customer: str, sku: str = "tee", qty: int = 1
) -> str:
    """An entry as the waiting-list scripts RPUSH it."""
    at_ms = 1_700_000_000_000 + seq
    return f"{seq}|{at_ms}|{kind}|{POOL}.{token}|{sku}|{qty}|{at_ms + 600_000}|{customer}"


# --- entries, bodies, signatures, retries ---------------------------------------------------


def test_an_entry_is_decoded_with_a_customer_id_that_holds_bars() -> None:
    entry = decode(b"7|1700000000123|offer_created|drop.abc|tee|2|1700000600123|shop|cust|1")
    assert (entry.seq, entry.at_ms, entry.kind) == (7, 1700000000123, OfferEvent.OFFER_CREATED)
    assert (entry.reservation_id, entry.pool, entry.sku, entry.quantity) == (
        "drop.abc",
        "drop",
        "tee",
        2,
    )
    assert (entry.expires_ms, entry.customer_id) == (1700000600123, "shop|cust|1")
    assert decode("1|2|offer_lapsed|p.t|s|1|3|c").kind is OfferEvent.OFFER_LAPSED


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "1|2|offer_created|drop.abc|tee|2|3",  # no customer
        "x|2|offer_created|drop.abc|tee|2|3|c",
        "1|2|offer_made|drop.abc|tee|2|3|c",
        "1|2|offer_created|drop.abc|tee|-2|3|c",
        "1|2|offer_created|drop.abc|tee|0|3|c",
        "1|2|offer_created|noPool|tee|1|3|c",
        "1|2|offer_created|drop.abc||1|3|c",
        "1|2|offer_created|drop.abc|tee|1|3|",
        "1|²|offer_created|drop.abc|tee|1|3|c",
        b"1|2|offer_created|drop.abc|tee|1|3|\xff",
    ],
)
def test_a_malformed_entry_is_refused_clearly(raw: str | bytes) -> None:
    with pytest.raises(MalformedOutboxEntry, match="outbox entry"):
        decode(raw)


def test_the_event_body_and_its_id() -> None:
    entry = decode(entry_text(3, "offer_created", "tok", "alice", qty=2))
    body = shop_event(entry)
    assert body == {
        "id": body["id"],
        "type": "waitlist.offer_created",
        "created": 1_700_000_000,
        "data": {
            "sku": "tee",
            "customer_id": "alice",
            "reservation_id": f"{POOL}.tok",
            "quantity": 2,
            "expires_at": "2023-11-14T22:23:20.003Z",
        },
    }
    expected_id = "evt_" + hashlib.sha256(f"offer_created|{POOL}.tok".encode()).hexdigest()[:24]
    assert body["id"] == expected_id
    # Moved twice (a later seq, the same offer): the same event; its lapse is another.
    assert shop_event(decode(entry_text(9, "offer_created", "tok", "alice")))["id"] == body["id"]
    assert shop_event(decode(entry_text(4, "offer_lapsed", "tok", "alice")))["id"] != body["id"]


def test_the_signature_is_stripes_scheme() -> None:
    body = b'{"id":"evt_1"}'
    header = signature_header(SECRET, 1_700_000_000, body)
    expected = hmac.new(SECRET.encode(), b'1700000000.{"id":"evt_1"}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify_signature(SECRET, header, body, 300, now=1_700_000_100)
    assert not verify_signature(SECRET, header, body + b" ", 300, now=1_700_000_100)
    assert not verify_signature(
        "another-secret-0123456789abcdef0123", header, body, 300, now=1_700_000_100
    )
    assert not verify_signature(SECRET, header, body, 300, now=1_700_000_301)  # too old
    assert not verify_signature(SECRET, None, body, 300)
    assert not verify_signature(SECRET, "v1=" + expected, body, 300)


@pytest.mark.parametrize("attempts", range(1, 20))
def test_retries_back_off_with_jitter_up_to_an_hour(attempts: int) -> None:
    ceiling = min(2.0**attempts, 3600.0)
    for _ in range(20):
        assert ceiling / 2 <= retry_delay(attempts) <= ceiling
    assert retry_delay(1) <= 2  # the first retry comes within seconds


# --- the relay: Redis list -> MongoDB --------------------------------------------------------


@pytest.fixture
async def outbox(
    client: RedisClient, keyspace: KeySpace, mongo_db: Database
) -> AsyncIterator[ShopOutbox]:
    """The relay and the delivery on the test's Redis keys and database (no shop URL)."""
    await client.sadd(keyspace.pools, POOL)
    async with httpx.AsyncClient(timeout=5) as http:
        yield new_outbox(Settings(), client, keyspace, mongo_db, http)


def new_outbox(
    settings: Settings, client: RedisClient, keys: KeySpace, db: Database, http: httpx.AsyncClient
) -> ShopOutbox:
    return ShopOutbox(
        settings=settings,
        entries=OutboxList(client, keys),
        lease=OutboxLease(client, keys, 30),
        events=ShopEventOutbox(db),
        pools=PoolDirectory(client, keys),
        metrics=Metrics(),
        http=http,
    )


async def push(client: RedisClient, keys: KeySpace, *entries: str) -> None:
    await client.rpush(keys.pool(POOL).outbox, *entries)


async def stored(db: Database) -> list[str]:
    return [
        d["event_id"] async for d in db["shop_events"].find({}).sort([("at_ms", 1), ("seq", 1)])
    ]


@pytest.mark.parametrize("client", REDIS_BACKENDS, indirect=True)
async def test_entries_end_in_mongodb_once_each(
    outbox: ShopOutbox, client: RedisClient, keyspace: KeySpace, mongo_db: Database
) -> None:
    texts = [entry_text(i, "offer_created", f"t{i}", f"c{i % 3}") for i in range(1, 251)]
    await push(client, keyspace, *texts)
    assert await outbox.relay() == 250
    assert await outbox.relay() == 0  # again: nothing new
    assert await client.llen(keyspace.pool(POOL).outbox) == 0
    assert await stored(mongo_db) == [decode(text).event_id for text in texts]
    assert outbox.metrics.sample("reservation_outbox_relayed_total", outcome="moved") == 250


@pytest.mark.parametrize("client", REDIS_BACKENDS, indirect=True)
async def test_a_crash_between_insert_and_trim_moves_nothing_twice(
    outbox: ShopOutbox, client: RedisClient, keyspace: KeySpace, mongo_db: Database
) -> None:
    texts = [entry_text(i, "offer_created", f"t{i}", "alice") for i in range(1, 6)]
    await push(client, keyspace, *texts)
    raw = await outbox.entries.oldest(POOL, 3)
    assert await outbox.store(raw) == 3  # ...and the process dies before the trim
    later = entry_text(6, "offer_lapsed", "t1", "alice")
    await push(client, keyspace, later)  # the scripts go on appending meanwhile
    # The next relay (this process or another) moves them again: already there.
    assert await outbox.relay() == 3
    assert await stored(mongo_db) == [decode(t).event_id for t in [*texts, later]]
    assert await client.llen(keyspace.pool(POOL).outbox) == 0
    assert outbox.metrics.sample("reservation_outbox_relayed_total", outcome="duplicate") == 3


@pytest.mark.parametrize("client", REDIS_BACKENDS, indirect=True)
async def test_a_relay_whose_entries_were_trimmed_by_another_drops_nothing(
    outbox: ShopOutbox, client: RedisClient, keyspace: KeySpace, mongo_db: Database
) -> None:
    texts = [entry_text(i, "offer_created", f"t{i}", "bob") for i in range(1, 5)]
    await push(client, keyspace, *texts)
    stale = await outbox.entries.oldest(POOL, 2)  # a relay whose lease lapses here
    assert await outbox.relay() == 4  # another relay moved and dropped them all
    await push(client, keyspace, entry_text(5, "offer_created", "t5", "bob"))
    assert not await outbox.entries.drop_oldest(POOL, stale)  # the stale trim does nothing
    assert await client.llen(keyspace.pool(POOL).outbox) == 1


@pytest.mark.parametrize("client", REDIS_BACKENDS, indirect=True)
async def test_a_malformed_entry_is_logged_and_does_not_block_the_list(
    outbox: ShopOutbox, client: RedisClient, keyspace: KeySpace, mongo_db: Database
) -> None:
    good = entry_text(2, "offer_created", "t2", "carol")
    await push(client, keyspace, "garbage", good)
    assert await outbox.relay() == 1
    assert await stored(mongo_db) == [decode(good).event_id]
    assert outbox.metrics.sample("reservation_outbox_relayed_total", outcome="malformed") == 1


@pytest.mark.parametrize("client", ["redis"], indirect=True)
async def test_one_process_at_a_time_holds_the_lease(
    client: RedisClient, keyspace: KeySpace
) -> None:
    first, second = OutboxLease(client, keyspace, 30), OutboxLease(client, keyspace, 30)
    assert await first.hold()
    assert not await second.hold()
    assert await first.hold()  # renewed
    await first.give_up()
    assert await second.hold()
    await client.delete(keyspace.outbox_lease)  # as if it lapsed
    assert await first.hold()
    assert not await second.hold()  # lapsed under it: taken afresh by the other


# --- the delivery ----------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["redis"], indirect=True)
async def test_a_shop_down_for_a_while_gets_every_event_afterwards_in_order(
    outbox: ShopOutbox, client: RedisClient, keyspace: KeySpace, mongo_db: Database
) -> None:
    # Three customers, each offered a unit that then lapses, and offered another.
    texts = []
    for seq in range(1, 10):
        customer = f"cust-{seq % 3}"
        kind = "offer_lapsed" if seq % 2 == 0 else "offer_created"
        texts.append(entry_text(seq, kind, f"t{(seq + 1) // 2}-{customer}", customer))
    await push(client, keyspace, *texts)
    hooks = ShopHooks(SECRET)
    settings = Settings(shop_webhook_secret=SECRET)
    with serve(hooks.app()) as url:
        async with httpx.AsyncClient(timeout=5) as http:
            # Refused connections first: nothing listens on the URL.
            refused = f"http://127.0.0.1:{free_port()}/hooks"
            down = new_outbox(
                replace(settings, shop_webhook_url=refused), client, keyspace, mongo_db, http
            )
            assert await down.relay() == 9
            later = datetime.now(UTC)  # every event is due
            assert await down.deliver_due(later) == (0, 3)  # each customer's first only
            assert await down.deliver_due(later) == (0, 0)  # none due again yet
            # Then the shop answers 500 for a while.
            shop = new_outbox(
                replace(settings, shop_webhook_url=f"{url}/hooks"), client, keyspace, mongo_db, http
            )
            hooks.status = 500
            later += timedelta(hours=2)
            assert await shop.deliver_due(later) == (0, 3)
            hooks.status = 200
            while (await shop.events.counts()).pending:
                later += timedelta(hours=2)
                await shop.deliver_due(later)
    expected = [decode(text) for text in texts]
    assert len(hooks.events) == 9
    assert sorted(hooks.taken_ids()) == sorted(e.event_id for e in expected)
    for customer in ("cust-0", "cust-1", "cust-2"):
        theirs = [e.event_id for e in expected if e.customer_id == customer]
        taken = [event["id"] for event in hooks.events if event["data"]["customer_id"] == customer]
        arrived = [i for i in hooks.arrived() if i in theirs]
        assert taken == theirs  # in the order they happened
        # A later event never arrived while an earlier one was pending: arrivals are in order.
        assert arrived == sorted(arrived, key=theirs.index)
    # Only the first events of each customer needed retries: one arrival more (the 500) each.
    first = {
        next(e.event_id for e in expected if e.customer_id == c)
        for c in ("cust-0", "cust-1", "cust-2")
    }
    for event_id in {e.event_id for e in expected}:
        assert hooks.arrived().count(event_id) == (2 if event_id in first else 1)
        document = await shop.events.get(event_id)
        assert document is not None
        assert document["state"] == "delivered"
        assert document["attempts"] == (3 if event_id in first else 1)
        assert document["last_error"] in ((None,) if event_id not in first else ("HTTP 500",))
    assert hooks.refused == 0
    counts = await shop.events.counts()
    assert (counts.pending, counts.delivered, counts.failing) == (0, 9, 0)


async def test_what_the_shop_receives_verifies(mongo_db: Database) -> None:
    """The body sent is the event's JSON, and its header verifies with the shop's secret."""
    hooks = ShopHooks(SECRET)
    text = entry_text(1, "offer_created", "tok", "dana")
    events = ShopEventOutbox(mongo_db)
    assert await events.add(decode(text))
    assert not await events.add(decode(text))  # already have it
    (event,) = await events.due(datetime.now(UTC), 10)
    body = event_body(event)
    assert json.loads(body) == shop_event(decode(text))
    header = signature_header(SECRET, int(time.time()), body)
    assert verify_signature(SECRET, header, body, hooks.tolerance)
    assert SIGNATURE_HEADER == "Reservation-Signature"
