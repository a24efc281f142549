"""The verifier's room checks (loadtests/verify_room.py) on hand-made admissions logs: a clean log
passes; a hold without an admission, a token used twice, a burst over the rate and too many live
admissions each fail, naming why."""

from __future__ import annotations

from loadtests.verify_room import (
    Admission,
    Room,
    RoomFinding,
    admission,
    max_in_window,
    peak_live,
    room_findings,
    room_summary,
)

T0 = 1_800_000_000_000  # epoch milliseconds
SKU = "hot"


def admitted(number: int, at: int, used_after: int | None = 100, lasts: int = 60_000) -> Admission:
    """Ticket `number` admitted `at` ms after T0, used `used_after` ms later (None: never),
    its token lasting `lasts` ms; a used one names hold r-<number>."""
    used = None if used_after is None else T0 + at + used_after
    return Admission(
        ticket=f"t-{number}",
        admitted_at=T0 + at,
        expires_at=T0 + at + lasts,
        used_at=used,
        reservation_id=None if used_after is None else f"r-{number}",
    )


def clean_room() -> tuple[Room, dict[str, frozenset[str]]]:
    """10 per second for 3 s (every 7th unused, lapsing after 300 ms), 5 live at most, every
    used admission's hold known."""
    admissions = [
        admitted(n, n * 100, used_after=50) if n % 7 else admitted(n, n * 100, None, lasts=300)
        for n in range(30)
    ]
    holds = {a.reservation_id: frozenset({SKU}) for a in admissions if a.reservation_id}
    holds["r-other"] = frozenset({"sku-000"})  # another SKU's hold needs no admission
    return Room(SKU, admit_per_second=10, max_active=5, admissions=admissions), holds


def kinds(found: list[RoomFinding]) -> list[str]:
    return sorted({finding.invariant for finding in found})


def test_a_clean_log_passes() -> None:
    room, holds = clean_room()
    assert room_findings([room], holds) == []
    assert room_summary(room) == (
        "room hot: 30 admissions, 25 used; at most 11 in 1 s, 30 in 5 s (10/s); "
        "at most 2 live (max_active 5)"
    )


def test_a_hold_without_an_admission_fails() -> None:
    room, holds = clean_room()
    holds["r-sneaked"] = frozenset({SKU, "sku-000"})
    found = room_findings([room], holds)
    assert found == [RoomFinding("room-hold", SKU, "hold r-sneaked without an admission")]


def test_a_token_used_twice_fails() -> None:
    room, holds = clean_room()
    # Two admissions name one hold: one of them made a hold the log does not have.
    first = room.admissions[1]
    room.admissions[2] = Admission(
        "t-2",
        first.admitted_at + 100,
        first.expires_at + 100,
        first.admitted_at + 150,
        first.reservation_id,
    )
    found = room_findings([room], holds)
    assert RoomFinding("room-hold", SKU, "hold r-1 named by 2 admissions") in found
    # The fair-start buyers' second try with a used token was let through.
    room, holds = clean_room()
    found = room_findings([room], holds, token_again_accepted=1)
    assert found == [
        RoomFinding(
            "room-token",
            "the fair-start buyers",
            "a used admission token made another hold 1 time(s)",
        )
    ]


def test_inconsistent_or_late_uses_fail() -> None:
    room, holds = clean_room()
    used_late = admitted(90, 3_000, used_after=61_000)  # after its 60 s
    no_hold = Admission("t-91", T0 + 3_100, T0 + 63_100, used_at=T0 + 3_200)
    listed_twice = admitted(92, 3_200)
    room.admissions += [used_late, no_hold, listed_twice, listed_twice]
    holds |= {"r-90": frozenset({SKU}), "r-92": frozenset({SKU})}
    room.max_active = 10
    details = [f.detail for f in room_findings([room], holds) if f.invariant == "room-token"]
    assert len(details) == 3
    assert "after it expired at" in details[0]
    assert details[1].endswith("used without a hold")
    assert details[2] == "ticket t-92's admission listed 2 times"


def test_a_burst_over_the_rate_fails() -> None:
    room, holds = clean_room()
    # 12 admitted within one second at 10 per second: the bound is 10 + 1.
    room.admissions += [admitted(100 + n, 10_000 + n * 80, used_after=10) for n in range(12)]
    holds |= {f"r-{100 + n}": frozenset({SKU}) for n in range(12)}
    found = room_findings([room], holds)
    assert kinds(found) == ["room-rate"]
    assert found[0].detail.startswith("12 admissions within 1 s from ")
    assert found[0].detail.endswith("(at most 11 at 10/s)")


def test_a_slow_excess_fails_over_longer_windows() -> None:
    # 1 per second allowed; one every 700 ms is within every 1 s window (2 <= 1 + 1), not
    # within 5 s (8 > 5 + 1) nor over the whole run (9 in 5.6 s > 6.6).
    admissions = [admitted(n, n * 700, used_after=10) for n in range(9)]
    holds = {a.reservation_id: frozenset({SKU}) for a in admissions if a.reservation_id}
    room = Room(SKU, admit_per_second=1, max_active=5, admissions=admissions)
    windows = [f.detail.split(" from ")[0] for f in room_findings([room], holds)]
    assert windows == ["8 admissions within 5 s", "9 admissions within 5.6 s"]


def test_too_many_live_admissions_fail() -> None:
    room, holds = clean_room()
    # Six admitted in a row, none used: live until they expire.
    room.admissions += [admitted(200 + n, 20_000 + n * 150, used_after=None) for n in range(6)]
    found = room_findings([room], holds)
    assert kinds(found) == ["room-active"]
    assert found[0].detail.startswith("6 admissions live at ")
    assert found[0].detail.endswith("(max_active 5)")


def test_live_counts_end_before_start_and_windows_are_closed() -> None:
    # One used at the very millisecond the next is admitted: never two live.
    back_to_back = [admitted(0, 0, used_after=100), admitted(1, 100, used_after=100)]
    assert peak_live(back_to_back) == (1, T0)
    # An unused admission is live until it expires.
    assert peak_live([admitted(0, 0, None, lasts=500), admitted(1, 400, None)]) == (2, T0 + 400)
    assert max_in_window([0, 500, 1000, 1001], 1000) == (3, 0)


def test_admissions_are_read_in_the_apis_time_format() -> None:
    entry = {
        "ticket": "t-1",
        "admitted_at": "2026-12-01T18:00:00.250Z",
        "expires_at": "2026-12-01T18:02:00.250Z",
        "used_at": None,
        "reservation_id": None,
    }
    found = admission(entry)
    assert found.expires_at - found.admitted_at == 120_000
    assert found.used_at is None
    assert found.ends_at == found.expires_at
