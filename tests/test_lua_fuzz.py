"""Hypothesis over the Lua scripts' argument space (issue 12, "Fuzzing").

Each script (every file of reservation/lua/ but the prelude: test_every_script_is_fuzzed) is
called directly — FCALL of its function through reservation.lua.library.Scripts, with the keys
reservation.core.keys builds — with arguments valid, at their bounds and hostile: empty, negative,
fractional, huge and non-numeric numbers, malformed carts, separators and unicode inside names
and ids, very long strings, too few and too many arguments. Whatever comes in:

1. no script error (ScriptFailed, which the service would answer as a 500), and the reply
   is one of the script's documented replies;
2. a refusal leaves every key of the test as it was (DUMP of each, and no TTL set again);
3. the stock invariants hold afterwards (tests/invariants.py), `reserved` is what the live
   holds hold, and each customer's count of live holds is the number of holds that are theirs;
   for the rate limiter, its log admits no more than the limit in any window.

Then the Python layer (Inventory) with what the HTTP API can hand it: every input is answered
or refused with a 4xx, never with a script error, and a refusal changes nothing.

Every example starts from the same stage (three SKUs, a live hold, a paid and a released
reservation, no lapsed hold, a client's rate log), restored after it; on real Redis and on
fakeredis (the embedded backend of `reservation serve`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib.resources import files
from operator import attrgetter
from typing import Any

import fakeredis
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from domain import errors
from domain.outcomes import (
    AdmissionRefused,
    CustomerRequired,
    Held,
    NotExtended,
    OutOfStock,
    OverCustomerLimit,
    Released,
    ReleaseRefused,
)
from domain.products import WaitingRoom
from domain.rules import NAME_PATTERN
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace, PoolKeys
from reservation.core.ratelimit import IP, subject_digest
from reservation.core.reservation_ids import new_reservation_id
from reservation.lua._pool import encode_room
from reservation.lua.library import (
    POOL_PRELUDE,
    SCRIPT_NAMES,
    STANDALONE_NAMES,
    RedisClient,
    Scripts,
    library,
)
from tests.conftest import REDIS_URL
from tests.invariants import assert_counts_hold, assert_hold_counts_hold, held_units, stored_levels

POOL = "default"
ROOMED = "d"  # the stage's SKU with a waiting room
ONE_AT_A_TIME = WaitingRoom(1, 1, 120)
ENTRY = '{"name":"Tee","price":2500,"currency":"eur"}'
HOLD, KEEP = "600000", "259200000"  # ms: what Inventory passes by default
# The stage's rate log: requests admitted this long ago (ms), the oldest out of most windows.
LOGGED_AGO = (7_200_000, 50_000, 1_000, 0)
Snapshot = dict[bytes, tuple[bytes, int]]

FUZZ = settings(
    max_examples=100,
    deadline=None,
    # The stage is built once per test; every example puts it back as it was.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- the stage every example starts from ---------------------------------------------------


# A short repr: a failure is replayed with its arguments' repr, this one among them, and the
# two Scripts here hold the library's text (42 kB each). Past 30 kB Hypothesis warns, and the
# suite's `-W error` reported that warning instead of the failure.
@dataclass(repr=False)
class Stage:
    client: RedisClient
    keys: KeySpace
    pool: PoolKeys
    scripts: Scripts
    ids: dict[str, str]  # held (a=2, bob), paid (b=1, ann), released (a=1,b=1), gone (none)
    base: Snapshot
    standalone: Scripts  # the functions that use no pool helper (rate_limit)
    rate_log: str  # one client's rate log, holding LOGGED_AGO

    def record_keys(self, reservation_id: str) -> tuple[str, ...]:
        return (*self.pool.shared, self.pool.record(reservation_id), self.pool.fence)

    def reserve_keys(self, reservation_id: str) -> tuple[str, ...]:
        """reserve's: the record, then the admissions and live tokens of d's room."""
        room = self.keys.room(POOL, ROOMED)
        return (*self.pool.shared, self.pool.record(reservation_id), room.admissions, room.live)

    def room_keys(self) -> tuple[str, ...]:
        return (*self.pool.shared, *self.keys.room(POOL, ROOMED).all)

    def __repr__(self) -> str:
        return f"Stage({self.keys.prefix!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis' printer looks for this before it prints a dataclass field by field.
        printer.text(repr(self))


async def snapshot(client: RedisClient, keys: KeySpace) -> Snapshot:
    """Every key of the key space: its serialized value and its TTL (ms; -1: none)."""
    names = sorted([key async for key in client.scan_iter(match=keys.pattern(), count=1000)])
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.dump(name)
        pipe.pttl(name)
    values = await pipe.execute()
    return {name: (values[2 * i], values[2 * i + 1]) for i, name in enumerate(names)}


async def put_back(stage: Stage) -> None:
    """The stage as it was built: keys added since deleted, keys changed restored."""
    current = await snapshot(stage.client, stage.keys)
    for name, (value, _) in current.items():
        if stage.base.get(name, (None,))[0] != value:
            await stage.client.delete(name)
    for name, (value, ttl) in stage.base.items():
        if current.get(name, (None,))[0] != value:
            await stage.client.restore(name, max(ttl, 0), value, replace=True)


async def redis_ms(client: RedisClient) -> int:
    seconds, micros = await client.time()
    return int(seconds) * 1000 + int(micros) // 1000


@pytest.fixture(params=["redis", "fakeredis"])
async def stage(request: pytest.FixtureRequest) -> AsyncIterator[Stage]:
    client: RedisClient
    if request.param == "redis":
        client = Redis.from_url(REDIS_URL)
    else:
        client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    keys = KeySpace(f"fuzz-{uuid.uuid4().hex[:12]}")
    inventory = Inventory(client, keys=keys)
    try:
        await inventory.stock.set_stock("a", 10, max_per_customer=5, entry=ENTRY)
        await inventory.stock.set_stock("b", 3, entry=ENTRY)
        await inventory.stock.set_stock("c", 0, entry=ENTRY)
        # d has a waiting room: ann was admitted (her token is live), bob waits.
        await inventory.stock.set_stock(ROOMED, 5, entry=ENTRY, room=encode_room(ONE_AT_A_TIME))
        ann = await inventory.rooms.join(ROOMED, "ann")
        bob = await inventory.rooms.join(ROOMED, "bob")
        assert (ann.status, bob.status) == ("admitted", "waiting")
        assert ann.admission_token is not None
        ids = {"gone": new_reservation_id(POOL), "ann_ticket": ann.ticket}
        ids |= {"bob_ticket": bob.ticket, "ann_token": ann.admission_token}
        for name, cart, customer in (
            ("held", [("a", 2)], "bob"),
            ("paid", [("b", 1)], "ann"),
            ("released", [("a", 1), ("b", 1)], None),
        ):
            outcome = await inventory.holds.reserve(cart, customer_id=customer)
            assert isinstance(outcome, Held)
            ids[name] = outcome.reservation.id
        await inventory.holds.commit(ids["paid"])
        await inventory.holds.release(ids["released"])
        rate_log = keys.rate_log(IP, subject_digest("192.0.2.1"))
        now = await redis_ms(client)
        logged = [now - ago for ago in LOGGED_AGO]
        await client.zadd(rate_log, {f"{at}-{n}": at for n, at in enumerate(logged)})
        await client.pexpire(rate_log, 3_600_000)
        base = await snapshot(client, keys)
        standalone = Scripts.register(client, STANDALONE_NAMES)
        yield Stage(
            client, keys, keys.pool(POOL), inventory.calls.scripts, ids, base, standalone, rate_log
        )
    finally:
        async for key in client.scan_iter(match=keys.pattern(), count=1000):
            await client.delete(key)
        await client.aclose()


# -- what the arguments may be ---------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """One of the stage's reservation ids, resolved when the example runs."""

    name: str


@dataclass(frozen=True)
class Slot:
    """One argument: the values its script takes, and the ones it must refuse or survive."""

    valid: st.SearchStrategy[Any]
    hostile: st.SearchStrategy[Any]


NUMBERS = [
    *("-1", "1.5", "1e3", "1e300", "0x10", "inf", "-inf", "nan", " 1", "1 ", "+1", "", "abc"),
    *("1000000000001", "9007199254740993", "9" * 30, "0" * 20 + "1"),
]
NAMES = [
    *("", "a|b", "a,b", "a=b", "{default}", "a}", "tée", "a b", "a\nb", "a\x00b", "x" * 65),
    *('"', "\\", ":expired", "a:total", "a=1"),
]
MALFORMED_CARTS = [
    *("a=", "=1", "a=1,,b", "a=1,", ",a=1", "a=1=2", "a==1", "a", "=", ",", "a=0", "a=-1"),
    *("a=1.5", "a=1e3", "a=0x10", "a=inf", "a=nan", "a= 1", "a=1 ", "a=+1", "a|b=1", "tée=1"),
    *("{default}=1", "a=1|b", "a=99999999999999999999", "a=1000000000001"),
    *("a=600000000000,a=600000000000",),  # summed past 10^12
]


class Long(str):
    """A long argument that reads as the expression that made it, `'a=1,' * 6000`: up to
    48 kB drawn, past the 30 kB of repr at which Hypothesis warns (see Stage)."""

    piece: str
    times: int

    def __new__(cls, piece: str, times: int) -> Long:
        made = super().__new__(cls, piece * times)
        made.piece, made.times = piece, times
        return made

    def __repr__(self) -> str:
        return f"{self.piece!r} * {self.times}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis' printer looks for this before its printer for str.
        printer.text(repr(self))


long_text = st.builds(
    Long, st.sampled_from(["x", "é", "|", ",", "a=1,", "b=1,a=1,"]), st.integers(500, 6000)
)
hostile_text = st.one_of(st.sampled_from(NUMBERS + NAMES), st.text(max_size=16), long_text)
boundary = st.sampled_from(["0", "1", "2", "3", "5", "8", "10", "1000000", "1000000000000"])
count = Slot(st.one_of(st.integers(0, 12).map(str), boundary), hostile_text)
hold = Slot(st.sampled_from(["600000", "1", "259200000"]), st.one_of(st.just("0"), hostile_text))
retention = Slot(st.sampled_from(["259200000", "1", "0"]), hostile_text)
name = st.one_of(st.sampled_from(["a", "b", "c", "d", "zz", "x" * 64, "-", ".", "A.b_c-9"]))
sku = Slot(name, hostile_text)
units = st.one_of(st.integers(1, 3), st.integers(1, 12), st.sampled_from([1_000_000, 10**12])).map(
    str
)
lines = st.lists(st.tuples(name, units), min_size=1, max_size=6)
cart = Slot(
    st.one_of(
        lines.map(lambda drawn: ",".join(f"{sku}={quantity}" for sku, quantity in drawn)),
        st.sampled_from(["a=1", "b=1", "a=1,b=1"]),  # what the stage has in stock
    ),
    st.one_of(st.sampled_from(MALFORMED_CARTS), long_text, hostile_text),
)
TOKEN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
fresh = st.text(TOKEN, min_size=16, max_size=22).map(lambda token: f"{POOL}.{token}")
reservation = Slot(
    st.sampled_from([Ref("held"), Ref("paid"), Ref("released"), Ref("gone")]), hostile_text
)
new_or_known = Slot(st.one_of(fresh, fresh, reservation.valid), hostile_text)
customer = Slot(st.sampled_from(["", "bob", "ann", "c|d", "é", "x" * 128]), hostile_text)
flag = Slot(st.sampled_from(["0", "1"]), st.sampled_from(["", "2", "yes"]))
entry = Slot(st.sampled_from(["", ENTRY]), hostile_text)
# A sale window (parse_sale in _pool.lua): open, past, current, future; a start after its end
# and a quote spliced into the product view are refused.
sale = Slot(
    st.sampled_from(
        [
            "",
            "|1|" + "|1970-01-01T00:00:00.001Z",
            "1||1970-01-01T00:00:00.001Z|",
            "9999999999999||2286-11-20T17:46:39.999Z|",
        ]
    ),
    st.one_of(st.sampled_from(["2|1|a|b", '1||"|', "1|2|x|"]), hostile_text),
)
limit = Slot(st.one_of(st.just(""), count.valid), hostile_text)
# A waiting room (parse_room in _pool.lua), and what the queue and reserve scripts take.
room = Slot(
    st.sampled_from(["", "1|1|120", "50|3|1", "100000|1000000|86400"]),
    st.one_of(
        st.sampled_from(["0|1|1", "1|0|1", "1|1|0", "1|1", "1.5|1|1", "-1|1|1"]), hostile_text
    ),
)
RANDOM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
random_part = st.text(RANDOM, min_size=22, max_size=22)
mode = Slot(st.sampled_from(["join", "poll"]), hostile_text)
ticket = Slot(
    st.one_of(st.sampled_from([Ref("ann_ticket"), Ref("bob_ticket")]), random_part), hostile_text
)
token_part = Slot(random_part, hostile_text)
# The waiting list's (waitlist.lua): its modes, and the id an entry's offer will have.
list_mode = Slot(st.sampled_from(["join", "read", "leave", "close", "open"]), hostile_text)
offer_id = Slot(
    random_part.map(lambda part: f"{POOL}.wl-{part}"),
    st.one_of(st.sampled_from([f"{POOL}.wl-x", f"{POOL}.wl-{'A' * 21}|"]), hostile_text),
)
seed = Slot(
    st.sampled_from(["1", "12345", "2147483398"]),
    st.one_of(st.sampled_from(["0", "2147483563", *NUMBERS]), hostile_text),
)
idle = Slot(st.sampled_from(["86400000", "1"]), st.one_of(st.just("0"), hostile_text))
admission_token = Slot(
    st.one_of(
        st.just(""),
        st.just(Ref("ann_token")),
        random_part.map(lambda part: f"{ROOMED}.{part}"),
        random_part.map(lambda part: f"a.{part}"),
    ),
    hostile_text,
)
pool = Slot(st.just(POOL), st.one_of(name, hostile_text))
batch = Slot(st.sampled_from(["64", "1"]), st.one_of(st.just("0"), hostile_text))
# reserve's cap on a customer's live holds: 0 is off; bob has one live hold, ann none.
hold_cap = Slot(
    st.sampled_from(["0", "0", "1", "1", "2", "1000000000000"]),
    st.one_of(st.sampled_from(NUMBERS), hostile_text),
)
# rate_limit's limit (requests) and window (ms); its log holds requests LOGGED_AGO.
requests = Slot(
    st.one_of(st.integers(1, 6).map(str), st.just("1000000000000")),
    st.one_of(st.sampled_from(["0", *NUMBERS]), hostile_text),
)
window = Slot(
    st.sampled_from(["1", "1000", "50000", "60000", "3600000", "86400000", "1000000000000000"]),
    st.one_of(st.sampled_from(["0", "1000000000000001", *NUMBERS]), hostile_text),
)


def argv(*slots: Slot) -> st.SearchStrategy[list[Any]]:
    """ARGV of a pool script: the reclaim batch, then `slots` (see `arguments`)."""
    return arguments(batch, *slots, steady=1)


def arguments(*every: Slot, steady: int = 0) -> st.SearchStrategy[list[Any]]:
    """ARGV drawn as: every argument valid (most often); one of them hostile; each of them
    either (the first `steady` valid); too few; too many."""
    valid = st.tuples(*(slot.valid for slot in every)).map(list)

    def spoil(index: int) -> st.SearchStrategy[list[Any]]:
        return st.tuples(valid, every[index].hostile).map(
            lambda drawn: [*drawn[0][:index], drawn[1], *drawn[0][index + 1 :]]
        )

    spoiled = [spoil(index) for index in range(steady, len(every))]
    mixed = st.tuples(
        *(slot.valid for slot in every[:steady]),
        *(st.one_of(slot.valid, slot.hostile) for slot in every[steady:]),
    )
    return st.one_of(
        *([valid] * 4),
        *([st.one_of(*spoiled)] * 2 if spoiled else []),
        *(spoil(index) for index in range(steady)),
        mixed.map(list),
        st.tuples(valid, st.integers(0, len(every) - 1)).map(lambda drawn: drawn[0][: drawn[1]]),
        st.tuples(valid, st.lists(hostile_text, min_size=1, max_size=2)).map(
            lambda drawn: drawn[0] + drawn[1]
        ),
    )


# -- what a script may answer ----------------------------------------------------------------

STATUSES = {b"held", b"awaiting_payment", b"committed", b"released", b"expired"}


def _text(value: Any) -> str:
    assert isinstance(value, bytes), value
    return value.decode()


def _count(value: Any, least: int = 0) -> int:
    assert isinstance(value, int), value
    assert not isinstance(value, bool), value
    assert least <= value <= 10**12, value
    return value


def _cart(value: Any) -> None:
    for line in _text(value).split(","):
        name, _, quantity = line.partition("=")
        assert NAME_PATTERN.fullmatch(name), line
        assert quantity.isdigit(), line
        assert int(quantity) >= 1, line


def _record(reply: list[Any]) -> None:
    assert len(reply) == 7, reply
    _, status, items, owner, expires_at, created_at, late = reply
    assert status in STATUSES, reply
    _cart(items)
    _text(owner)
    # Times come as the decimal digits of ms since the epoch (text: no number is formatted).
    assert _text(expires_at).isdigit(), reply
    assert _text(created_at).isdigit(), reply
    assert late in (b"0", b"1", b"x"), reply


def _new_hold(reply: list[Any]) -> None:  # {'held', expires_at, created_at}
    assert len(reply) == 3, reply
    assert _text(reply[1]).isdigit(), reply
    assert _text(reply[2]).isdigit(), reply
    assert int(reply[1]) > int(reply[2]), reply


def shaped(**shapes: Callable[[list[Any]], None]) -> Callable[[Any], str]:
    """A reply check: a list whose first element names the outcome, checked by its shape."""

    def check(reply: Any) -> str:
        assert isinstance(reply, list), reply
        assert reply, reply
        outcome = _text(reply[0])
        assert outcome in shapes, reply
        shapes[outcome](reply)
        return outcome

    return check


def _bad_request(reply: list[Any]) -> None:
    assert len(reply) == 2, reply
    _text(reply[1])


def _just(reply: list[Any]) -> None:
    assert len(reply) == 1, reply


def _sku(reply: list[Any]) -> None:
    assert len(reply) == 2, reply
    _text(reply[1])


def _short(reply: list[Any]) -> None:  # {outcome, sku, requested, available}
    assert len(reply) == 4, reply
    _text(reply[1])
    _count(reply[2], least=1)
    _count(reply[3])


def _insufficient(reply: list[Any]) -> None:  # reserve's: _short's, then windowed '0'/'1'
    assert len(reply) == 5, reply
    _short(reply[:4])
    assert reply[4] in (b"0", b"1"), reply


def _not_on_sale(reply: list[Any]) -> None:  # {'not_on_sale', sku, starts_ms, ends_ms}
    assert len(reply) == 4, reply
    _text(reply[1])
    for value in reply[2:]:
        assert value == b"" or _text(value).isdigit(), reply


def _limit(reply: list[Any]) -> None:  # {'customer_limit', sku, limit, already}
    assert len(reply) == 4, reply
    _text(reply[1])
    _count(reply[2], least=1)
    _count(reply[3])


def _hold_cap(reply: list[Any]) -> None:  # {'hold_cap', cap, held}
    assert len(reply) == 3, reply
    _count(reply[1], least=1)
    _count(reply[2], least=reply[1])


def _counters(reply: list[Any]) -> None:  # {'ok', total, reserved, sold, limit, on_sale}
    assert len(reply) == 6, reply
    for value in reply[1:5]:
        _count(value)
    assert reply[5] in (b"0", b"1"), reply


def _below(reply: list[Any]) -> None:  # {'below_committed', reserved, sold}
    assert len(reply) == 3, reply
    _count(reply[1])
    _count(reply[2])


def _product(reply: Any) -> str:
    if isinstance(reply, list):
        return shaped(bad_request=_bad_request)(reply)
    if reply is None:
        return "none"
    view = json.loads(_text(reply))
    assert set(view) == {
        *("sku", "name", "price", "currency", "pool", "stock", "reserved", "sold"),
        *("available", "max_per_customer", "sale_starts_at", "sale_ends_at", "on_sale"),
        *("waiting_room", "waitlist"),
    }, view
    assert isinstance(view["on_sale"], bool), view
    assert view["waitlist"] >= 0, view
    # While anyone waits in the SKU's line, nothing is available to the public.
    public = view["stock"] - view["reserved"] - view["sold"] if view["waitlist"] == 0 else 0
    assert view["available"] == public, view
    return "json"


def _reclaim(reply: Any) -> str:
    if isinstance(reply, list) and reply and isinstance(reply[0], bytes):
        return shaped(bad_request=_bad_request)(reply)
    assert isinstance(reply, list), reply
    assert len(reply) == 2, reply
    _count(reply[0])
    _count(reply[1])
    return "reclaimed"


def _restore(reply: Any) -> str:
    if isinstance(reply, list) and reply and isinstance(reply[0], bytes):
        return shaped(bad_request=_bad_request)(reply)
    assert isinstance(reply, list), reply
    assert len(reply) == 9, reply
    _count(reply[0], least=-1)
    for value in reply[1:8]:
        _count(value)
    assert reply[8] in (b"0", b"1"), reply
    return "restored"


def _snapshot(reply: Any) -> str:
    assert isinstance(reply, list), reply
    if len(reply) == 2:
        return shaped(bad_request=_bad_request)(reply)
    assert len(reply) % 10 == 0, reply
    for i in range(0, len(reply), 10):
        _text(reply[i])
        _count(reply[i + 1], least=-1)
        for value in reply[i + 2 : i + 5]:
            _count(value)
        for value in reply[i + 5 : i + 8]:  # catalog entry, sale window, waiting room
            assert value is None or isinstance(value, bytes), reply
        assert reply[i + 8] in (b"0", b"1"), reply
        _count(reply[i + 9])  # entries in the waiting list's line
    return "listed"


def _ticket(reply: list[Any]) -> None:  # {outcome, ticket, status, position, wait, poll
    assert len(reply) == 8, reply  # after, token, token expires}
    _text(reply[1])
    status = _text(reply[2])
    assert status in ("waiting", "admitted", "sold_out", "expired"), reply
    _count(reply[3], least=0 if status in ("admitted", "expired") else 1)
    _count(reply[4])
    assert 1000 <= int(reply[5]) <= 60000, reply
    assert (reply[6] != b"") == (status == "admitted") == (reply[7] != b""), reply


def _room(reply: list[Any]) -> None:  # {'ok', room, started, waiting, active, token, entry...}
    assert len(reply) >= 5, reply
    assert len(reply) % 2 == 1, reply
    assert reply[2] in (b"0", b"1"), reply
    _count(reply[3])
    _count(reply[4])


def _counted(reply: list[Any]) -> None:  # {outcome, count}
    assert len(reply) == 2, reply
    _count(reply[1])


def _limit_of(reply: list[Any]) -> None:  # {'customer_limit', limit, already}
    assert len(reply) == 3, reply
    _count(reply[1], least=1)
    _count(reply[2])


WAITER_STATUSES = ("waiting", "offered", "lapsed", "left", "bought")


def _waiter(reply: list[Any]) -> None:  # {outcome, status, position, qty, offer, expires, joined}
    assert len(reply) == 7, reply
    status = _text(reply[1])
    assert status in WAITER_STATUSES, reply
    _count(reply[2], least=1 if status == "waiting" else 0)
    _count(reply[3], least=1)
    assert isinstance(reply[6], int), reply  # joined: ms of Redis TIME
    assert reply[6] > 0, reply


def _line(reply: list[Any]) -> None:  # {'ok', closed, in line, live offers, (who, qty, joined)...}
    assert len(reply) >= 4, reply
    assert (len(reply) - 4) % 3 == 0, reply
    assert reply[1] in (b"0", b"1"), reply
    _count(reply[2])
    _count(reply[3])


@dataclass(frozen=True)
class Spec:
    """A script's documented replies, and the outcomes that must change nothing."""

    check: Callable[[Any], str]
    unchanged: frozenset[str]
    record: bool = False  # KEYS[4] (and KEYS[5]) are ARGV[2]'s record (and the fence)
    room: bool = False  # KEYS[4..7] are the keys of d's waiting room


def _records(*outcomes: str) -> dict[str, Callable[[list[Any]], None]]:
    return dict.fromkeys(outcomes, _record)


REFUSED = ("bad_request", "not_found", "fenced")
SPECS = {
    "reserve": Spec(
        shaped(
            held=_new_hold,
            **_records("existing"),
            unknown_sku=_sku,
            insufficient=_insufficient,
            not_on_sale=_not_on_sale,
            customer_limit=_limit,
            customer_required=_sku,
            hold_cap=_hold_cap,
            admission_required=_sku,
            admission_invalid=_sku,
            admission_used=_sku,
            bad_request=_bad_request,
        ),
        frozenset(
            {"existing", "unknown_sku", "insufficient", "customer_limit", "customer_required"}
            | {"hold_cap", "bad_request", "not_on_sale"}
            | {"admission_required", "admission_invalid", "admission_used"}
        ),
        record=True,
    ),
    "release": Spec(
        shaped(
            **_records("released", "unchanged", "already_committed"),
            not_found=_just,
            bad_request=_bad_request,
        ),
        frozenset({"unchanged", "already_committed", *REFUSED}),
        record=True,
    ),
    "commit": Spec(
        shaped(
            **_records("committed", "committed_late", "already_committed"),
            oversold=_short,
            unknown_stock=_sku,
            fenced=_just,
            not_found=_just,
            bad_request=_bad_request,
        ),
        frozenset({"already_committed", "unknown_stock", *REFUSED}),
        record=True,
    ),
    "extend": Spec(
        shaped(
            **_records("extended", "not_held", "already_committed"),
            not_found=_just,
            bad_request=_bad_request,
        ),
        frozenset({"not_held", "already_committed", *REFUSED}),
        record=True,
    ),
    "lookup": Spec(
        shaped(**_records("found"), not_found=_just, bad_request=_bad_request),
        frozenset({"found", *REFUSED}),
        record=True,
    ),
    "restock": Spec(
        shaped(
            **_records("restocked", "unchanged"),
            fenced=_just,
            not_found=_just,
            bad_request=_bad_request,
        ),
        frozenset({"unchanged", *REFUSED}),
        record=True,
    ),
    "settle_paid": Spec(
        shaped(settled=_just, unchanged=_just, oversold=_just, bad_request=_bad_request),
        frozenset({"unchanged", "oversold", "bad_request"}),
        record=True,
    ),
    "set_stock": Spec(
        shaped(ok=_counters, below_committed=_below, missing=_just, bad_request=_bad_request),
        frozenset({"below_committed", "missing", "bad_request"}),
    ),
    "restore": Spec(_restore, frozenset({"bad_request"})),
    "product": Spec(_product, frozenset({"json", "none", "bad_request"})),
    "snapshot": Spec(_snapshot, frozenset({"listed", "bad_request"})),
    "reclaim": Spec(_reclaim, frozenset({"reclaimed", "bad_request"})),
    "queue": Spec(
        shaped(
            **dict.fromkeys(("new", "again", "found"), _ticket),
            unknown_sku=_just,
            no_room=_just,
            no_ticket=_just,
            bad_request=_bad_request,
        ),
        frozenset({"unknown_sku", "no_room", "no_ticket", "bad_request"}),
        room=True,
    ),
    "room": Spec(
        shaped(ok=_room, unknown_sku=_just, no_room=_just, bad_request=_bad_request),
        frozenset({"ok", "unknown_sku", "no_room", "bad_request"}),
        room=True,
    ),
    "waitlist": Spec(
        shaped(
            **dict.fromkeys(("new", "again", "found", "left", "unchanged"), _waiter),
            closed=_counted,
            opened=_just,
            unknown_sku=_just,
            not_in_line=_just,
            on_sale=_counted,
            list_closed=_just,
            not_on_sale=_not_on_sale,
            customer_limit=_limit_of,
            bad_request=_bad_request,
        ),
        frozenset(
            {"again", "found", "unchanged", "unknown_sku", "not_in_line", "on_sale"}
            | {"list_closed", "not_on_sale", "customer_limit", "bad_request"}
        ),
    ),
    "waitlist_line": Spec(
        shaped(ok=_line, unknown_sku=_just, bad_request=_bad_request),
        frozenset({"ok", "unknown_sku", "bad_request"}),
    ),
}


# -- one call, and what must hold after it ---------------------------------------------------


MAX_UNITS, MAX_MS = 10**12, 10**15  # the scripts' bounds (lua/_pool.lua)


def plain(value: object, least: int, most: int) -> bool:
    """Decimal digits (at most 16) of a whole number from `least` to `most`."""
    return (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) <= 16
        and least <= int(value) <= most
    )


def taken_plain(outcome: str, numbers: list[Any], most: int, least: int = 1) -> None:
    """A script that answered anything but bad_request took its arguments: `numbers` (the ones
    this test checks) must then have been there, and plain digits within their bounds."""
    if outcome != "bad_request":
        assert numbers, f"answered {outcome} without the argument"
        for number in numbers:
            assert plain(number, least, most), f"answered {outcome} to {number!r}"


def resolve(stage: Stage, args: list[Any]) -> list[str]:
    return [stage.ids[arg.name] if isinstance(arg, Ref) else arg for arg in args]


def unchanged(before: Snapshot, after: Snapshot) -> bool:
    """Every key holds what it held, and no TTL was set again (it only ran down)."""
    return before.keys() == after.keys() and all(
        after[name][0] == value and (ttl < 0) == (after[name][1] < 0) and after[name][1] <= ttl
        for name, (value, ttl) in before.items()
    )


async def assert_invariants(
    stage: Stage, script: str = "", args: list[str] | None = None, outcome: str = ""
) -> None:
    """The invariants in every pool of the key space (and `reserved` = the live holds)."""
    pools = {_text(found) for found in await stage.client.smembers(stage.keys.pools)}
    for pool in sorted(pools | {POOL}):
        await _pool_invariants(stage, pool, script, args or [], outcome)


async def _pool_invariants(
    stage: Stage, pool: str, script: str, args: list[str], outcome: str
) -> None:
    pool_keys = stage.keys.pool(pool)
    levels = await stored_levels(stage.client, pool_keys, pool)
    held = await held_units(stage.client, pool_keys)
    for level in levels:
        if script == "restore" and outcome == "restored" and level.sku == args[1]:
            # Reconcile's word is taken as given (MongoDB is the truth): check it was kept.
            asked = (int(args[2]), int(args[3]), int(args[4]) or None)
            assert (level.total, level.sold, level.max_per_customer) == asked, level
            assert level.reserved == held[level.sku], level
            continue
        assert_counts_hold(level)
        if not (script == "settle_paid" and outcome == "settled"):
            # settle_paid leaves `reserved` for the `restore` reconcile runs right after it.
            assert level.reserved == held[level.sku], (level, held)
    usage = await stage.client.hgetall(pool_keys.usage)
    assert all(int(units) > 0 for units in usage.values()), usage
    await assert_hold_counts_hold(stage.client, pool_keys)


async def exercise(stage: Stage, script: str, drawn: list[Any], fenced: bool = False) -> str:
    """Call `script` with `drawn` ARGV; check the three properties; put the stage back."""
    spec = SPECS[script]
    args = resolve(stage, drawn)
    keys: tuple[str, ...] = stage.pool.shared
    if script == "reserve":
        keys = stage.reserve_keys(args[1] if len(args) > 1 else "")
    elif spec.record:
        keys = stage.record_keys(args[1] if len(args) > 1 else "")
    elif spec.room:
        keys = stage.room_keys()
    try:
        if fenced:
            await stage.client.set(stage.pool.fence, "1", px=600_000)
        before = await snapshot(stage.client, stage.keys)
        try:
            reply = await stage.scripts.run(script, keys, args)
        except (ResponseError, errors.ScriptFailed) as exc:
            pytest.fail(f"{script} {args!r}: a script error: {exc}")
        outcome = spec.check(reply)
        event(f"{outcome} {reply[1] if outcome == 'bad_request' else ''}")
        after = await snapshot(stage.client, stage.keys)
        if outcome in spec.unchanged:
            assert unchanged(before, after), f"{script} {args!r} answered {outcome} and wrote"
        await assert_invariants(stage, script, args, outcome)
        return outcome
    finally:
        await put_back(stage)


# -- the scripts, one by one -----------------------------------------------------------------


# Each @example below is something fuzzing found (a script error, a wrong reply or a wrong
# write) before the scripts checked their arguments; kept so that it stays fixed.
@FUZZ
@given(
    args=argv(new_or_known, hold, retention, customer, cart, flag, flag, hold_cap, admission_token),
    fenced=st.booleans(),
)
# gmatch on a missing cart; PX 1.5 and PX 1e300; "requested" -2^63 answered for "a=inf" and
# "a=1e300"; an id with '|' made a hold member the reclaim could not give back; 3,000 lines
# passed Lua's unpack limit; a batch that is not a number reached ZRANGE LIMIT.
@example(args=[], fenced=False)
@example(args=["64", Ref("gone"), "1.5", KEEP, "", "a=1", "1", "0", "0"], fenced=False)
@example(args=["64", Ref("gone"), "1e300", KEEP, "", "a=1", "1", "0", "0"], fenced=False)
@example(args=["64", Ref("gone"), HOLD, KEEP, "", "a=inf", "1", "0", "0"], fenced=False)
@example(args=["64", Ref("gone"), HOLD, KEEP, "", "a=1e300", "1", "0", "0"], fenced=False)
@example(args=["64", "default.x|a=5", HOLD, KEEP, "", "a=1", "1", "0", "0"], fenced=False)
@example(args=["64", Ref("gone"), HOLD, KEEP, "", "a=1," * 3000, "1", "0", "0"], fenced=False)
@example(args=["x", Ref("gone"), HOLD, KEEP, "", "a=1", "1", "0", "0"], fenced=False)
# The hold cap: bob has one live hold, so a cap of 1 refuses him and 2 admits him. Before the
# script checked it, tonumber took any cap: a missing, negative, nan or 1e300 one was no cap,
# 1.5 a cap of 1.5 (no script error: `taken_plain` below is what notices).
@example(args=["64", Ref("gone"), HOLD, KEEP, "bob", "a=1", "1", "0", "1"], fenced=False)
@example(args=["64", Ref("gone"), HOLD, KEEP, "bob", "a=1", "1", "0", "2"], fenced=False)
@example(args=["64", Ref("gone"), HOLD, KEEP, "bob", "a=1", "1", "0"], fenced=False)
@example(args=["64", Ref("gone"), HOLD, KEEP, "bob", "a=1", "1", "0", "1.5"], fenced=False)
@example(args=["64", Ref("gone"), HOLD, KEEP, "bob", "a=1", "1", "0", "-1"], fenced=False)
@example(args=["64", Ref("gone"), HOLD, KEEP, "bob", "a=1", "1", "0", "nan"], fenced=False)
@example(args=["64", Ref("gone"), HOLD, KEEP, "bob", "a=1", "1", "0", "1e300"], fenced=False)
async def test_reserve(stage: Stage, args: list[Any], fenced: bool) -> None:
    outcome = await exercise(stage, "reserve", args, fenced)
    taken_plain(outcome, args[8:9], MAX_UNITS, least=0)


@FUZZ
@given(args=argv(reservation))
@example(args=["1.5", Ref("held")])  # ZRANGE LIMIT 1.5
async def test_release(stage: Stage, args: list[Any]) -> None:
    await exercise(stage, "release", args)


@FUZZ
@given(args=argv(reservation, retention, cart, customer), fenced=st.booleans())
@example(args=["64", Ref("held"), "0", "", ""], fenced=False)  # SET PX 0
@example(args=["64", Ref("gone"), "0", "a=1", ""], fenced=False)
async def test_commit(stage: Stage, args: list[Any], fenced: bool) -> None:
    await exercise(stage, "commit", args, fenced)


@FUZZ
@given(args=argv(reservation, hold, retention))
@example(args=["64", Ref("held"), "abc", "0"])  # arithmetic on nil
async def test_extend(stage: Stage, args: list[Any]) -> None:
    await exercise(stage, "extend", args)


@FUZZ
@given(args=argv(reservation))
@example(args=[])
async def test_lookup(stage: Stage, args: list[Any]) -> None:
    await exercise(stage, "lookup", args)


@FUZZ
@given(args=argv(reservation, retention), fenced=st.booleans())
async def test_restock(stage: Stage, args: list[Any], fenced: bool) -> None:
    await exercise(stage, "restock", args, fenced)


@FUZZ
@given(args=argv(reservation, retention, cart, customer))
@example(args=["64", Ref("gone"), "0", "a=1", ""])  # SET PX 0
async def test_settle_paid(stage: Stage, args: list[Any]) -> None:
    await exercise(stage, "settle_paid", args)


@FUZZ
@given(args=argv(sku, count, limit, entry, flag, sale, room))
@example(args=[])
@example(args=["64", "b", "abc", "", "", "0"])  # nil compared with a number
@example(args=["64", "b", "1.5", "", "", "0"])  # a fractional total stored
@example(args=["64", "a", "10", "1.5", "", "0"])  # a fractional limit stored
@example(args=["64", "zz", "1e300", "", "", "0"])  # a total of -2^63 answered
@example(args=["64", "zz", "-1", "", "", "0"])
async def test_set_stock(stage: Stage, args: list[Any]) -> None:
    await exercise(stage, "set_stock", args)


@FUZZ
@given(args=argv(sku, count, count, count, entry, sale, room))
@example(args=["64", "a", "0", "0", "", ""])  # HSET with a nil limit
@example(args=["64", "zz", "-1", "0", "0", ""])
async def test_restore(stage: Stage, args: list[Any]) -> None:
    await exercise(stage, "restore", args)


@FUZZ
@given(args=argv(sku, pool))
@example(args=[])  # a nil SKU concatenated
@example(args=["64", "a", 'x","stock":99,"y":"'])  # a pool spliced into the JSON
async def test_product(stage: Stage, args: list[Any]) -> None:
    await exercise(stage, "product", args)


@FUZZ
@given(
    args=st.tuples(
        st.one_of(batch.valid, batch.valid, batch.valid, batch.hostile),
        st.lists(st.one_of(sku.valid, sku.hostile)),
    ).map(lambda drawn: [drawn[0], *drawn[1]])
)
@example(args=["1.5"])
@example(args=["64", *(f"s{i}" for i in range(2100))])  # HMGET of 8,400 fields: unpack
async def test_snapshot(stage: Stage, args: list[Any]) -> None:
    await exercise(stage, "snapshot", args)


@FUZZ
@given(args=argv(mode, sku, ticket, customer, token_part, seed, seed, idle))
@example(args=[])
# d's room admits one at a time and ann's token is live: bob waits, a newcomer queues behind.
@example(args=["64", "poll", "d", Ref("bob_ticket"), "", "A" * 22, "1", "1", "86400000"])
@example(args=["64", "join", "d", "B" * 22, "", "A" * 22, "1", "1", "86400000"])
@example(args=["64", "join", "d", "B" * 22, "ann", "A" * 22, "1", "1", "86400000"])
async def test_queue(stage: Stage, args: list[Any]) -> None:
    await exercise(stage, "queue", args)


@FUZZ
@given(args=argv(sku))
@example(args=["64", "d"])
async def test_room(stage: Stage, args: list[Any]) -> None:
    await exercise(stage, "room", args)


@FUZZ
@given(args=argv(list_mode, sku, customer, count, hold, retention, offer_id))
@example(args=[])
@example(args=["64", "join", "a", "bob", "1", "600000", "0", f"{POOL}.wl-{'A' * 22}"])
@example(args=["64", "close", "a"])
async def test_waitlist(stage: Stage, args: list[Any]) -> None:
    await exercise(stage, "waitlist", args)


@FUZZ
@given(args=argv(sku, count))
@example(args=["64", "a", "10"])
async def test_waitlist_line(stage: Stage, args: list[Any]) -> None:
    await exercise(stage, "waitlist_line", args)


@FUZZ
@given(args=argv())
@example(args=[])
async def test_reclaim(stage: Stage, args: list[Any]) -> None:
    await exercise(stage, "reclaim", args)


def _rate_reply(reply: Any) -> str:
    """{1, left} | {0, wait} | {'bad_request', 'limit'|'window'}."""
    assert isinstance(reply, list), reply
    assert len(reply) == 2, reply
    if isinstance(reply[0], bytes):
        assert reply == [b"bad_request", b"limit"] or reply == [b"bad_request", b"window"], reply
        return "bad_request"
    assert reply[0] in (0, 1), reply
    if reply[0]:
        _count(reply[1])  # requests left
        return "admitted"
    assert isinstance(reply[1], int), reply
    assert 1 <= reply[1] <= MAX_MS, reply  # ms to wait
    return "limited"


async def rate_entries(client: RedisClient, log: str) -> dict[str, int]:
    """The rate log: member -> its time (ms)."""
    entries: list[Any] = await client.zrange(log, 0, -1, withscores=True)
    return {_text(member): int(at) for member, at in entries}


# outbox_trim's count and the entry the relay read first (ENTRIES below: its list).
OUTBOX_ENTRIES = [f"{n}|1|offer_created|{POOL}.wl-{'A' * 22}|a|1|2|c{n}" for n in (1, 2, 3)]
trim_count = Slot(st.sampled_from(["1", "2", "3", "4", "1000000"]), hostile_text)
first_entry = Slot(st.sampled_from([*OUTBOX_ENTRIES, ""]), hostile_text)


@FUZZ
@given(args=arguments(trim_count, first_entry))
@example(args=[])
@example(args=["inf", OUTBOX_ENTRIES[0]])
@example(args=["2", OUTBOX_ENTRIES[0]])
@example(args=["2", OUTBOX_ENTRIES[1]])
async def test_outbox_trim(stage: Stage, args: list[Any]) -> None:
    """A refusal ({'bad_request', ...}) or 0 changes nothing; 1 drops exactly the first `count`
    entries, and only when the list started with the entry given."""
    client, outbox = stage.client, stage.pool.outbox
    try:
        await client.rpush(outbox, *OUTBOX_ENTRIES)
        before = await snapshot(client, stage.keys)
        try:
            reply = await stage.standalone.run("outbox_trim", [outbox], args)
        except (ResponseError, errors.ScriptFailed) as exc:
            pytest.fail(f"outbox_trim {args!r}: a script error: {exc}")
        after = await snapshot(client, stage.keys)
        if isinstance(reply, list):
            _bad_request(reply)
            event(f"bad_request {_text(reply[1])}")
            assert unchanged(before, after), f"outbox_trim {args!r} refused and wrote"
            return
        event(f"trimmed {reply}")
        if reply == 0:
            assert args[1] != OUTBOX_ENTRIES[0], args
            assert unchanged(before, after), f"outbox_trim {args!r} answered 0 and wrote"
            return
        assert reply == 1, reply
        assert args[1] == OUTBOX_ENTRIES[0], args
        left = [_text(entry) for entry in await client.lrange(outbox, 0, -1)]
        assert left == OUTBOX_ENTRIES[int(args[0]) :], (args, left)
    finally:
        await put_back(stage)


@FUZZ
@given(args=arguments(requests, window))
# What these found in the script as merged: a script error (a 503 for the request) for a
# missing, 0 or negative argument, for a window of 1.5 (PEXPIRE, after the ZADD: a request
# logged in a key without a TTL) and a limit of 1.5 (ZRANGE); a wait of -2^63 ms for a window
# of 1e300, and requests left -2^63 for a limit of inf or nan (a script error on fakeredis);
# '0x10' taken as 16; and every refusal wrote (it dropped what had left the window first).
@example(args=[])
@example(args=["3", "0"])
@example(args=["-1", "60000"])
@example(args=["3", "1.5"])
@example(args=["3", "1e300"])
@example(args=["1.5", "60000"])
@example(args=["0x10", "60000"])
@example(args=["inf", "60000"])
@example(args=["nan", "60000"])
@example(args=["3", "1000000000000000"])
@example(args=["1", "60000"])
@example(args=["1000000000000", "1000000000000000"])
async def test_rate_limit(stage: Stage, args: list[Any]) -> None:
    """The properties for the rate limiter, whose state is the client's rate log: a refusal
    ({0, wait} or bad_request) changes no key; an admission adds one request, drops only what
    left the window, keeps at most `limit` in it, and says how many more fit."""
    client, log = stage.client, stage.rate_log
    try:
        before = await snapshot(client, stage.keys)
        logged = await rate_entries(client, log)
        start = await redis_ms(client)
        try:
            reply = await stage.standalone.run("rate_limit", [log], args)
        except (ResponseError, errors.ScriptFailed) as exc:
            pytest.fail(f"rate_limit {args!r}: a script error: {exc}")
        end = await redis_ms(client)
        outcome = _rate_reply(reply)
        event(f"{outcome} {_text(reply[1]) if outcome == 'bad_request' else ''}")
        after = await snapshot(client, stage.keys)
        if outcome in ("limited", "bad_request"):
            assert unchanged(before, after), f"rate_limit {args!r} answered {outcome} and wrote"
        others = [name for name in before if name != log.encode()]
        assert unchanged({n: before[n] for n in others}, {n: after[n] for n in others})
        if outcome == "bad_request":
            return
        taken_plain(outcome, args[0:1], MAX_UNITS)
        taken_plain(outcome, args[1:2], MAX_MS)
        limit, span = int(args[0]), int(args[1])
        # The script's clock read `now` between start and end: what it saw in the window.
        surely_in = sum(1 for at in logged.values() if at > end - span)
        maybe_in = sum(1 for at in logged.values() if at > start - span)
        if outcome == "limited":
            assert maybe_in >= limit, (logged, start, args)
            assert 1 <= reply[1] <= span, reply
            return
        assert surely_in < limit, (logged, end, args)
        now = await rate_entries(client, log)
        if not now:  # the log lapsed one window after the admitted request
            assert await redis_ms(client) >= start + span - 1, (args, start)
            return
        added = set(now) - set(logged)
        assert len(added) == 1, (logged, now)
        (member,) = added
        at = now[member]
        assert start <= at <= end, (member, start, end)
        assert member.startswith(f"{at}-"), member
        kept = set(now) - added
        assert kept <= set(logged), (logged, now)
        assert all(logged[m] > at - span for m in kept), (logged, now, at)
        assert all(logged[m] <= at - span for m in set(logged) - kept), (logged, now, at)
        assert len(now) <= limit, (now, limit)
        assert reply[1] == limit - len(now), (reply, now)
        lapses = await client.pttl(log)  # one window after now, or already (-2: gone)
        assert lapses == -2 or 0 <= lapses <= span, lapses
    finally:
        await put_back(stage)


def test_every_script_is_fuzzed() -> None:
    """Every file of reservation/lua/ but the prelude is a registered script with a fuzz test
    here (test_<script>, driven by hypothesis): a new script cannot go unfuzzed."""
    lua = files("reservation").joinpath("lua")
    scripts = sorted(
        entry.name.removesuffix(".lua")
        for entry in lua.iterdir()
        if entry.name.endswith(".lua") and entry.name != f"{POOL_PRELUDE}.lua"
    )
    assert scripts == sorted([*SCRIPT_NAMES, *STANDALONE_NAMES])
    assert all(f"'{library().function(name)}'" in library().code for name in scripts)
    unfuzzed = [
        name
        for name in scripts
        if not hasattr(globals().get(f"test_{name}"), "hypothesis")
        or (name in SCRIPT_NAMES and name not in SPECS)
    ]
    assert unfuzzed == [], f"scripts without a fuzz test in {__name__}: {unfuzzed}"


async def test_a_pool_of_thousands_of_skus_is_listed(stage: Stage) -> None:
    # Found by fuzzing snapshot: GET /v1/products (and reconcile) read every SKU of a pool in
    # one HMGET of four fields per SKU, past Lua's unpack limit from about 2,000 SKUs on.
    skus = [f"s{i:04d}" for i in range(2100)]
    counters = {"total": "5", "reserved": "0", "sold": "1", "limit": "0", "product": ENTRY}
    fields = [
        part
        for sku in skus
        for name, value in counters.items()
        for part in (f"{sku}:{name}", value)
    ]
    await stage.client.hset(stage.pool.stock, items=fields)  # as set_stock writes them
    listed = await Inventory(stage.client, keys=stage.keys).stock.listing(pool=POOL)
    assert [item.level.sku for item in listed] == sorted(["a", "b", "c", ROOMED, *skus])
    assert {(item.level.total, item.level.sold) for item in listed[4:]} == {(5, 1)}
    assert all(item.entry == ENTRY for item in listed)


# -- through the Python layer, with what the HTTP API can hand it ----------------------------
#
# The scripts' callers are the methods of Inventory's parts; what reaches them from a request
# has passed the API's msgspec schemas (reservation/api/schemas.py: names, quantities 1 to
# 10^6, customer ids), a path parameter (any text but '/') or a signed event's metadata
# (reservation ids, carts of name=int lines, a customer id). Drawn here a little wider than
# that: whatever comes in is answered, or refused with a 4xx that changed nothing — never a
# script error (503).

REFUSALS = (
    *(OutOfStock, OverCustomerLimit, CustomerRequired, ReleaseRefused, NotExtended),
    AdmissionRefused,
)
any_text = st.one_of(hostile_text, st.text(max_size=80))
stocked = st.sampled_from(["a", "b", "c", ROOMED])
known = st.sampled_from([Ref("held"), Ref("paid"), Ref("released"), Ref("gone")])


def http(valid: st.SearchStrategy[Any], wide: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly what the API's checks let through, sometimes anything of the field's type."""
    return st.one_of(valid, valid, valid, wide)


http_sku = http(stocked, st.one_of(name, any_text))
http_quantity = http(
    st.integers(1, 3), st.one_of(st.integers(-2, 10**7), st.sampled_from([10**6, 10**13]))
)
http_cart = http(
    st.lists(st.tuples(http_sku, http_quantity), min_size=1, max_size=4),
    st.lists(st.tuples(http_sku, http_quantity), max_size=120),
)
http_customer = http(
    st.sampled_from([None, "bob", "ann", "c|d", "x" * 128]), st.one_of(st.just("x" * 129), any_text)
)
http_reservation = http(
    st.one_of(known, fresh), st.one_of(any_text, any_text.map(lambda token: f"{POOL}.{token}"))
)
http_stock = http(st.integers(0, 12), st.integers(-1, 10**13))
http_limit = http(st.one_of(st.none(), st.integers(1, 6)), st.integers(-1, 10**7))
http_pool = http(st.sampled_from([POOL, POOL, "other"]), st.one_of(name, any_text))
http_token = http(st.one_of(st.none(), st.just(Ref("ann_token"))), any_text)
http_ticket = http(st.sampled_from([Ref("ann_ticket"), Ref("bob_ticket")]), any_text)

operations = st.one_of(
    st.tuples(
        st.just("holds.reserve"),
        st.fixed_dictionaries(
            {"items": http_cart, "customer_id": http_customer, "admission_token": http_token}
        ),
    ),
    st.tuples(
        st.just("rooms.join"),
        st.fixed_dictionaries({"sku": http_sku, "customer_id": http_customer}),
    ),
    st.tuples(
        st.just("rooms.poll"), st.fixed_dictionaries({"sku": http_sku, "ticket": http_ticket})
    ),
    st.tuples(st.just("rooms.state"), st.fixed_dictionaries({"sku": http_sku})),
    st.tuples(
        st.just("holds.release"), st.fixed_dictionaries({"reservation_id": http_reservation})
    ),
    st.tuples(st.just("holds.get"), st.fixed_dictionaries({"reservation_id": http_reservation})),
    st.tuples(
        st.just("holds.commit"),
        st.fixed_dictionaries(
            {"reservation_id": http_reservation, "items": http_cart, "customer_id": http_customer}
        ),
    ),
    st.tuples(
        st.just("stock.set_stock"),
        st.fixed_dictionaries(
            {
                "sku": http_sku,
                "total": http_stock,
                "pool": http_pool,
                "max_per_customer": http_limit,
                "entry": st.just(ENTRY),
            }
        ),
    ),
    st.tuples(st.just("stock.product_json"), st.fixed_dictionaries({"sku": http_sku})),
    st.tuples(
        st.just("stock.levels"), st.fixed_dictionaries({"skus": st.lists(http_sku, max_size=4)})
    ),
)


def _resolved(stage: Stage, value: Any) -> Any:
    return stage.ids[value.name] if isinstance(value, Ref) else value


REMEMBERED = ("held", "paid", "released")  # reservations of the stage that Redis has


def lost_counters(stage: Stage, method: str, arguments: dict[str, Any]) -> bool:
    """commit's documented 503 (`unknown_stock`): the paid cart of a reservation Redis does
    not have names a SKU it has no counters for, which means Redis lost them (docs/design.md);
    it decides nothing until reconcile puts them back."""
    return (
        method == "holds.commit"
        and arguments["reservation_id"] not in [stage.ids[name] for name in REMEMBERED]
        and any(sku not in ("a", "b", "c", ROOMED) for sku, _ in arguments["items"])
    )


@settings(FUZZ, max_examples=200)
@given(operation=operations)
# Drawn under some seeds (it failed a run here) before lost_counters() was allowed for: a
# 503 by design, not a script error.
@example(
    operation=(
        "holds.commit",
        {"reservation_id": Ref("gone"), "items": [("zz", 1)], "customer_id": None},
    )
)
async def test_nothing_the_api_passes_makes_a_script_fail(
    stage: Stage, operation: tuple[str, dict[str, Any]]
) -> None:
    method, drawn = operation
    arguments = {key: _resolved(stage, value) for key, value in drawn.items()}
    inventory = Inventory(stage.client, keys=stage.keys)
    try:
        before = await snapshot(stage.client, stage.keys)
        try:
            outcome = await attrgetter(method)(inventory)(**arguments)
        except errors.ReservationError as exc:
            # A script error would be StorageUnavailable (503): only refusals may come out.
            lost = (
                isinstance(exc, errors.StorageUnavailable)
                and "sku" in exc.details  # PoolDirectory.lost(), not a script error
                and lost_counters(stage, method, arguments)
            )
            if exc.status_code >= 500 and not lost:
                pytest.fail(f"{method}({arguments!r}): {exc.code}: {exc.message}")
            refused = True
        else:
            refused = isinstance(outcome, REFUSALS) or (
                isinstance(outcome, Released) and not outcome.changed
            )
        event(f"{method}: {'refused' if refused else type(outcome).__name__}")
        if refused:
            after = await snapshot(stage.client, stage.keys)
            assert unchanged(before, after), f"{method}({arguments!r}) was refused and wrote"
        await assert_invariants(stage)
    finally:
        await put_back(stage)
