"""The verifier's waiting-list checks (loadtests/verify_waitlist.py) on hand-made sales: a clean
one passes; an offer out of line order, a public hold while the line waited, a unit offered
twice and events the shop missed or got out of order each fail, naming why. The shop receiver
of the rehearsal (loadtests/shop_receiver.py) records what it got."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import httpx

from domain.waitlist_events import signature_header
from loadtests.shop_receiver import RecordingHooks, read_record, receiver_app
from loadtests.verify_waitlist import (
    CREATED,
    LAPSED,
    Hold,
    Join,
    LineFinding,
    Lines,
    ShopEvent,
    is_offer,
    waitlist_findings,
    waitlist_summary,
)
from tests.stripe_fake import serve

T0 = 1_800_000_000_000
SKU = "hot"
TOKEN = "A" * 22


def offer_id(n: int) -> str:
    return f"default.wl-{TOKEN[:-3]}{n:03d}"


def event(kind: str, n: int, customer: str, at: int, seq: int) -> ShopEvent:
    return ShopEvent(
        event_id=f"evt_{kind}_{n}",
        kind=kind,
        sku=SKU,
        customer_id=customer,
        reservation_id=offer_id(n),
        quantity=1,
        at_ms=T0 + at,
        pool="default",
        seq=seq,
    )


def hold(rid: str, customer: str, created: int, status: str, lasts: int = 8_000) -> Hold:
    return Hold(rid, SKU, 1, customer, T0 + created, T0 + created + lasts, status)


def clean_sale() -> Lines:
    """2 units, sold to the public at 0 ms; alice, bob, carol join at 100/200/300 ms. A public
    hold given back at 1 s goes to alice (who buys), the other lapses at 8 s and goes to bob,
    whose offer lapses at 14 s and goes to carol (who gives it back: the line is empty, so
    the unit goes public and dave holds it at 20 s)."""
    joins = [
        Join(SKU, "alice", 1, T0 + 100, status="bought", offer_id=offer_id(1)),
        Join(SKU, "bob", 2, T0 + 200, status="lapsed", offer_id=offer_id(2)),
        Join(SKU, "carol", 3, T0 + 300, status="left", offer_id=offer_id(3)),
    ]
    events = [
        event(CREATED, 1, "alice", 1_000, 1),
        event(CREATED, 2, "bob", 8_000, 2),
        event(LAPSED, 2, "bob", 14_000, 3),
        event(CREATED, 3, "carol", 14_000, 4),
    ]
    holds = [
        hold("default.p1", "pub1", 0, "released"),
        hold("default.p2", "pub2", 0, "expired"),
        hold(offer_id(1), "alice", 1_000, "committed", lasts=6_000),
        hold(offer_id(2), "bob", 8_000, "expired", lasts=6_000),
        hold(offer_id(3), "carol", 14_000, "released", lasts=6_000),
        hold("default.p3", "dave", 20_000, "expired"),
    ]
    received = [(e.event_id, True) for e in events] + [("evt_offer_created_1", False)]
    return Lines(joins, events, holds, {SKU: 2}, received)


def kinds(found: list[LineFinding]) -> list[str]:
    return sorted({finding.invariant for finding in found})


def test_a_clean_sale_passes() -> None:
    lines = clean_sale()
    assert waitlist_findings(lines) == []
    assert waitlist_summary(lines) == (
        "waiting lists: 3 joins, 3 offers (their holds: 1 bought, 1 lapsed, 1 given back or "
        "unpaid, 0 live; 1 lapse events); 3 public holds; 4 shop events, 4 received "
        "(+1 redelivered)"
    )


def test_offer_ids_are_told_apart() -> None:
    assert is_offer(offer_id(1))
    assert not is_offer("default.WwNCFT6tm9G_HlNuDAR2lw")
    assert not is_offer("default.wl-short")


def test_an_offer_out_of_line_order_fails() -> None:
    lines = clean_sale()
    # The first unit went to bob while alice waited ahead of him.
    lines.events[0] = event(CREATED, 1, "bob", 1_000, 1)
    lines.holds[2] = hold(offer_id(1), "bob", 1_000, "committed", lasts=6_000)
    found = [f for f in waitlist_findings(lines) if f.invariant == "wl-order"]
    assert found[0] == LineFinding(
        "wl-order", SKU, f"offer {offer_id(1)} to bob (place 2) while alice (place 1) waited ahead"
    )


def test_an_offer_to_someone_not_in_line_fails() -> None:
    lines = clean_sale()
    lines.events.append(event(CREATED, 9, "mallory", 15_000, 5))
    lines.received.append(("evt_offer_created_9", True))
    found = waitlist_findings(lines)
    assert (
        LineFinding("wl-order", SKU, f"offer {offer_id(9)} to mallory, who was not in line")
        in found
    )


def test_nobody_behind_passes_a_head_that_left_or_was_not_there_yet() -> None:
    lines = clean_sale()
    # alice left at 500 ms, before any offer: bob first is in order. A joiner of the very
    # millisecond of an offer may be behind it either way: not a finding.
    lines.joins[0] = Join(SKU, "alice", 1, T0 + 100, left_ms=T0 + 500, status="left")
    lines.events = [e for e in lines.events if e.customer_id != "alice"]
    lines.events[0] = event(CREATED, 2, "bob", 1_000, 2)
    lines.holds[2] = hold("default.p9", "pub9", 50, "released")
    lines.holds[3] = hold(offer_id(2), "bob", 1_000, "expired", lasts=13_000)
    lines.received = [(e.event_id, True) for e in lines.events]
    assert waitlist_findings(lines) == []


def test_a_public_hold_while_the_line_waited_fails() -> None:
    lines = clean_sale()
    # The crowd got a unit at 5 s: bob (and carol) were still waiting.
    lines.holds.append(hold("default.crowd1", "crowd1", 5_000, "released"))
    found = waitlist_findings(lines)
    assert kinds(found) == ["wl-crowd"]
    assert found[0].detail.startswith("public hold default.crowd1 created while bob waited")


def test_a_unit_offered_twice_fails() -> None:
    lines = clean_sale()
    # bob's offer is told to him, but its hold is carol's; and two entries name one offer.
    lines.holds[3] = hold(offer_id(2), "carol", 8_000, "expired", lasts=6_000)
    lines.joins[2] = Join(SKU, "carol", 3, T0 + 300, status="lapsed", offer_id=offer_id(2))
    details = [f.detail for f in waitlist_findings(lines) if f.invariant == "wl-double"]
    assert f"offer {offer_id(2)} told to bob, held for carol" in details
    assert f"offer {offer_id(2)} named by 2 entries" in details


def test_more_units_offered_than_in_stock_fails() -> None:
    lines = clean_sale()
    # carol is offered a unit (and buys it) at 9 s while alice's (bought) and bob's (live
    # until 14 s) take both.
    lines.events[3] = event(CREATED, 3, "carol", 9_000, 3)
    lines.events[2] = event(LAPSED, 2, "bob", 14_000, 4)
    lines.holds[4] = hold(offer_id(3), "carol", 9_000, "committed", lasts=6_000)
    found = waitlist_findings(lines)
    assert (
        LineFinding(
            "wl-double", SKU, f"at offer {offer_id(3)} ({T0 + 9_000} ms) 3 units taken, 2 in stock"
        )
        in found
    )


def test_events_missed_pending_or_out_of_order_fail() -> None:
    lines = clean_sale()
    lines.received = [
        ("evt_offer_created_1", True),
        ("evt_offer_lapsed_2", True),  # before bob's offer_created
        ("evt_offer_created_2", True),
        ("evt_unknown", True),
    ]  # carol's offer never arrived
    lines.events[3] = dataclasses.replace(lines.events[3], delivered=False)
    details = [f.detail for f in waitlist_findings(lines) if f.invariant == "wl-events"]
    assert details == [
        "offer_created evt_offer_created_3 of carol not received",
        "offer_created evt_offer_created_3 still pending in MongoDB",
        "received evt_unknown, which the outbox never had",
        f"bob's events arrived out of order: offer_lapsed {offer_id(2)}, "
        f"offer_created {offer_id(2)}",
    ]


def test_offers_the_records_show_without_their_events_fail() -> None:
    lines = clean_sale()
    lines.events = [e for e in lines.events if e.kind != LAPSED]
    lines.received = [(e.event_id, True) for e in lines.events]
    found = [f.detail for f in waitlist_findings(lines) if f.invariant == "wl-events"]
    assert found == ["bob's offer lapsed: no offer_lapsed event"]


def test_the_receiver_records_each_valid_delivery(tmp_path: Path) -> None:
    record = tmp_path / "shop-events.jsonl"
    hooks = RecordingHooks("s3cret", record=record)
    body = json.dumps({"id": "evt_1", "type": "waitlist.offer_created", "data": {}}).encode()
    signed = {"Reservation-Signature": signature_header("s3cret", int(time.time()), body)}
    with serve(receiver_app(hooks)) as url, httpx.Client(base_url=url) as client:
        assert client.get("/healthz").status_code == 200
        assert client.post("/hooks", content=body, headers=signed).status_code == 200
        assert client.post("/hooks", content=body, headers=signed).status_code == 200
        forged = {"Reservation-Signature": signature_header("other", int(time.time()), body)}
        assert client.post("/hooks", content=body, headers=forged).status_code == 400
    assert [(line["id"], line["first"]) for line in read_record(record)] == [
        ("evt_1", True),
        ("evt_1", False),
    ]
    assert hooks.taken_ids() == ["evt_1"]
    assert read_record(tmp_path / "none.jsonl") == []


def test_offers_made_in_one_millisecond_are_judged_by_their_order() -> None:
    lines = clean_sale()
    # Two units came back at once at 8 s: bob's offer and carol's, in that order, one script.
    lines.events[1] = event(CREATED, 2, "bob", 8_000, 2)
    lines.events[3] = event(CREATED, 3, "carol", 8_000, 3)
    lines.events[2] = event(LAPSED, 2, "bob", 14_000, 4)
    lines.holds[1] = hold("default.p2", "pub2", 0, "released")
    lines.holds[4] = hold(offer_id(3), "carol", 8_000, "released", lasts=6_000)
    lines.received = [(e.event_id, True) for e in sorted(lines.events, key=lambda e: e.order)]
    assert waitlist_findings(lines) == []
    # The same millisecond, carol's first: she passed bob.
    lines.events[1] = event(CREATED, 2, "bob", 8_000, 3)
    lines.events[3] = event(CREATED, 3, "carol", 8_000, 2)
    lines.received = [(e.event_id, True) for e in sorted(lines.events, key=lambda e: e.order)]
    found = waitlist_findings(lines)
    assert [f.invariant for f in found] == ["wl-order"]
    assert "to carol (place 3) while bob (place 2) waited ahead" in found[0].detail
