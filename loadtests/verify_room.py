"""The verifier's look at the waiting rooms of a sale (`python -m loadtests.verify
--waiting-room`), from the service's own records: each roomed SKU's admissions log (admin
`GET /v1/queue/{sku}`) and the holds the verifier already knows (the reservations of the
recorded checkouts, orders and Stripe sessions, and those the admissions name), read from Redis.

The invariants, each a line of the verifier's report when broken (`room-hold`, `room-token`,
`room-rate`, `room-active`):

- room-hold: every hold of a roomed SKU appears in exactly one admission's `reservation_id`
  (no hold without an admission). The rehearsal creates its SKUs with their rooms, so every
  hold of such a SKU was made while its room was on.
- room-token: no token used twice: an admission names at most one hold and a hold is named by
  at most one admission; an admission is used (`used_at`) exactly when it names a hold, and
  not after it expired; with Locust's stats, no `reserve (admitted): token again` was
  accepted (the fair-start buyers try each used token once more).
- room-rate: the admission rate never exceeded: with admissions sorted by `admitted_at`, for
  every window [t, t + w] starting at an admission, w in {1 s, 5 s, the whole run}: the
  admissions in it are at most `admit_per_second` * w + 1.
- room-active: never more than `max_active` live admissions (admitted, neither used nor
  expired): +1 at `admitted_at`, -1 at `used_at` (or `expires_at` when unused, whichever comes
  first), swept in time order, ends before starts at the same millisecond.

`room_findings` is pure over what was read, so each invariant can be shown to fail on a
hand-made log (tests/test_verify_room.py).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from domain import errors
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace
from reservation.services import redis_client
from reservation.settings import Settings

TOKEN_AGAIN_ACCEPTED = "reserve (admitted): token again: accepted"
WINDOWS_MS = (1000, 5000)  # and the whole run


@dataclass(frozen=True, slots=True)
class Admission:
    """One entry of a room's admissions log; times in epoch milliseconds."""

    ticket: str
    admitted_at: int
    expires_at: int
    used_at: int | None = None
    reservation_id: str | None = None

    @property
    def ends_at(self) -> int:
        """When it stops being live: used, or expired unused."""
        return self.expires_at if self.used_at is None else min(self.used_at, self.expires_at)


@dataclass
class Room:
    """A roomed SKU: its room's settings and its admissions log."""

    sku: str
    admit_per_second: int
    max_active: int
    admissions: list[Admission] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RoomFinding:
    invariant: str  # room-hold, room-token, room-rate, room-active
    subject: str  # the SKU
    detail: str


def room_findings(
    rooms: Sequence[Room], holds: dict[str, frozenset[str]], token_again_accepted: int = 0
) -> list[RoomFinding]:
    """Every broken room invariant. `holds`: reservation id -> the SKUs it holds (every hold
    the verifier knows of); `token_again_accepted`: Locust's count of used tokens accepted."""
    found: list[RoomFinding] = []
    for room in rooms:
        found += _holds(room, holds)
        found += _tokens(room)
        found += _rate(room)
        found += _active(room)
    if token_again_accepted:
        found.append(
            RoomFinding(
                "room-token",
                "the fair-start buyers",
                f"a used admission token made another hold {token_again_accepted} time(s)",
            )
        )
    return found


def _holds(room: Room, holds: dict[str, frozenset[str]]) -> list[RoomFinding]:
    naming = Counter(a.reservation_id for a in room.admissions if a.reservation_id)
    found = []
    for reservation_id in sorted(r for r, skus in holds.items() if room.sku in skus):
        if naming[reservation_id] != 1:
            why = "without an admission" if not naming[reservation_id] else "named by"
            count = f" {naming[reservation_id]} admissions" if naming[reservation_id] else ""
            found.append(RoomFinding("room-hold", room.sku, f"hold {reservation_id} {why}{count}"))
    return found


def _tokens(room: Room) -> list[RoomFinding]:
    found = []
    seen: Counter[tuple[str, int]] = Counter()
    for a in room.admissions:
        seen[(a.ticket, a.admitted_at)] += 1
        what = f"admission of ticket {a.ticket} at {_iso(a.admitted_at)}"
        if (a.used_at is None) != (a.reservation_id is None):
            why = "used without a hold" if a.used_at is not None else "names a hold, not used"
            found.append(RoomFinding("room-token", room.sku, f"{what} {why}"))
        if a.used_at is not None and a.used_at > a.expires_at:
            found.append(
                RoomFinding(
                    "room-token",
                    room.sku,
                    f"{what} used at {_iso(a.used_at)}, after it expired at {_iso(a.expires_at)}",
                )
            )
    found += [
        RoomFinding("room-token", room.sku, f"ticket {ticket}'s admission listed {n} times")
        for (ticket, _), n in sorted(seen.items())
        if n > 1
    ]
    return found


def _rate(room: Room) -> list[RoomFinding]:
    times = sorted(a.admitted_at for a in room.admissions)
    if not times:
        return []
    found = []
    for window in (*WINDOWS_MS, max(times[-1] - times[0], 1)):
        bound = room.admit_per_second * window / 1000 + 1
        worst, at = max_in_window(times, window)
        if worst > bound:
            found.append(
                RoomFinding(
                    "room-rate",
                    room.sku,
                    f"{worst} admissions within {window / 1000:g} s from {_iso(at)} "
                    f"(at most {bound:g} at {room.admit_per_second}/s)",
                )
            )
    return found


def max_in_window(times: Sequence[int], window: int) -> tuple[int, int]:
    """The most of the sorted `times` within [t, t + window] for t each of them, and that t."""
    best, at = 0, times[0] if times else 0
    for start, t in enumerate(times):
        count = bisect.bisect_right(times, t + window, lo=start) - start
        if count > best:
            best, at = count, t
    return best, at


def peak_live(admissions: Iterable[Admission]) -> tuple[int, int]:
    """The most admissions live at once, and when first: ends before starts at one time."""
    events = sorted(
        [(a.admitted_at, 1) for a in admissions] + [(a.ends_at, -1) for a in admissions]
    )  # (t, -1) sorts before (t, +1)
    live = best = at = 0
    for t, step in events:
        live += step
        if live > best:
            best, at = live, t
    return best, at


def _active(room: Room) -> list[RoomFinding]:
    peak, at = peak_live(room.admissions)
    if peak <= room.max_active:
        return []
    return [
        RoomFinding(
            "room-active",
            room.sku,
            f"{peak} admissions live at {_iso(at)} (max_active {room.max_active})",
        )
    ]


def room_summary(room: Room) -> str:
    """One line of what was checked for a room: its admissions, uses, peaks against bounds."""
    times = sorted(a.admitted_at for a in room.admissions)
    peaks = ", ".join(
        f"{max_in_window(times, window)[0]} in {window / 1000:g} s" for window in WINDOWS_MS
    )
    used = sum(1 for a in room.admissions if a.used_at is not None)
    return (
        f"room {room.sku}: {len(room.admissions)} admissions, {used} used; at most {peaks} "
        f"({room.admit_per_second}/s); at most {peak_live(room.admissions)[0]} live "
        f"(max_active {room.max_active})"
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="milliseconds")


def _ms(text: Any) -> int | None:
    """An API time ("2026-12-01T18:00:00.000Z") in epoch milliseconds; None for null."""
    if text is None:
        return None
    return round(datetime.fromisoformat(str(text)).timestamp() * 1000)


def admission(entry: dict[str, Any]) -> Admission:
    """An entry of the admin queue view's `admissions`."""
    admitted, expires = _ms(entry["admitted_at"]), _ms(entry["expires_at"])
    assert admitted is not None
    assert expires is not None
    return Admission(
        ticket=str(entry["ticket"]),
        admitted_at=admitted,
        expires_at=expires,
        used_at=_ms(entry.get("used_at")),
        reservation_id=entry.get("reservation_id"),
    )


# -- reading -----------------------------------------------------------------------------------


def read_rooms(service_url: str, admin_token: str) -> list[Room]:
    """Every SKU with a waiting room, and its admissions log, from the service's API."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=service_url, headers=headers, timeout=60) as http:
        products = http.get("/v1/products")
        products.raise_for_status()
        rooms = []
        for product in products.json()["data"]:
            if not product.get("waiting_room"):
                continue
            view = http.get(f"/v1/queue/{product['sku']}")
            view.raise_for_status()
            found = view.json()
            rooms.append(
                Room(
                    sku=str(found["sku"]),
                    admit_per_second=int(found["waiting_room"]["admit_per_second"]),
                    max_active=int(found["waiting_room"]["max_active"]),
                    admissions=[admission(entry) for entry in found["admissions"]],
                )
            )
        return rooms


async def read_holds(
    settings: Settings, reservation_ids: Iterable[str]
) -> dict[str, frozenset[str]]:
    """Reservation id -> the SKUs it holds, for each of `reservation_ids` Redis still knows."""
    redis = redis_client(settings)
    inventory = Inventory(redis, keys=KeySpace(settings.key_prefix))
    found: dict[str, frozenset[str]] = {}
    try:
        for reservation_id in sorted(set(reservation_ids)):
            try:
                hold = await inventory.holds.get(reservation_id)
            except errors.NotFound:
                continue
            found[reservation_id] = frozenset(line.sku for line in hold.items)
    finally:
        await redis.aclose()
    return found
