"""The Wing-Gong-Lowe checker on hand-written histories (known linearizable and known not),
on histories the model makes itself (always linearizable), and the window it prints."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import TypedDict

import pytest

from loadtests.linearizability import explain, history
from loadtests.linearizability import initial as initial_record
from loadtests.linearizability.checker import Verdict, check, main
from loadtests.linearizability.history import Operation
from loadtests.linearizability.initial import Initial
from loadtests.linearizability.model import PoolModel
from loadtests.linearizability.search import search
from loadtests.linearizability.synthetic import FAULTS, Shape, synthetic
from tests.lin_histories import POOL, Script, initial


class Windows(TypedDict):
    soldout_window: float
    read_window: float
    budget_seconds: float


WINDOWS: Windows = {"soldout_window": 0.3, "read_window": 0.2, "budget_seconds": 30.0}


def verdict_of(
    script: Script, setup: Initial, *, soldout_window: float = 0.3, read_window: float = 0.2
) -> Verdict:
    verdict = check(
        script.ops,
        initial=setup,
        soldout_window=soldout_window,
        read_window=read_window,
        budget_seconds=WINDOWS["budget_seconds"],
    )
    json.dumps(verdict.to_json())  # a report can keep it as it is
    return verdict


def blocking(verdict: Verdict) -> list[int]:
    """The operation ids the printed window marks as unexplained (and all it shows)."""
    window = verdict.pools[0].window
    assert window is not None
    return [row.op for row in window.rows if row.blocking]


def shown(verdict: Verdict) -> set[int]:
    window = verdict.pools[0].window
    assert window is not None
    return {row.op for row in window.rows}


# ---- linearizable ------------------------------------------------------------------------


def test_two_reserves_of_the_last_unit_one_wins() -> None:
    s = Script()
    s.sold_out((0.0, 1.0), "a", process=1)  # answered first, but it took effect second
    s.hold((0.1, 0.9), [["a", 1]], "p.r1", process=2)
    s.product((1.5, 1.6), "a", 1, 1)
    assert verdict_of(s, initial({"a": 1}), soldout_window=0.0).verdict == "ok"


@pytest.mark.parametrize("reserved", [0, 1])
def test_a_read_overlapping_a_hold_sees_either_state(reserved: int) -> None:
    s = Script()
    s.hold((0.0, 1.0), [["a", 1]], "p.r1", process=1)
    s.product((0.5, 0.6), "a", 2, reserved, process=2)
    assert verdict_of(s, initial({"a": 2}), read_window=0.0).verdict == "ok"


@pytest.mark.parametrize("happened", [True, False])
def test_an_unknown_reserve_that_did_or_did_not_happen(happened: bool) -> None:
    s = Script()
    s.hold((0.0, None), [["a", 1]], "unseen")
    s.product((5.0, 5.1), "a", 2, 1 if happened else 0)
    s.product((6.0, 6.1), "a", 2, 1 if happened else 0)
    assert verdict_of(s, initial({"a": 2})).verdict == "ok"


def test_an_unknown_reserve_may_not_happen_twice_over_reads() -> None:
    s = Script()
    s.hold((0.0, None), [["a", 1]], "unseen")
    s.product((5.0, 5.1), "a", 2, 1)
    s.product((6.0, 6.1), "a", 2, 0)  # it cannot have happened and then not
    assert verdict_of(s, initial({"a": 2})).verdict == "fail"


def test_an_idempotent_retry_finds_the_hold_of_the_call_that_timed_out() -> None:
    s = Script()
    s.hold((0.0, None), [["a", 1]], "unseen", customer="c1", key="k1")
    s.hold((2.0, 2.1), [["a", 1]], "p.r7", customer="c1", key="k1")
    s.product((3.0, 3.1), "a", 3, 1)  # one hold, not two
    s.release((4.0, 4.1), "p.r7")
    s.product((5.0, 5.1), "a", 3, 0)
    assert verdict_of(s, initial({"a": 3})).verdict == "ok"


def test_a_checkout_and_a_payment_sell_the_units() -> None:
    s = Script()
    s.hold((0.0, 0.1), [["a", 2]], "p.r1", customer="c1")
    s.checkout((0.2, 0.3), "p.r1", "cs_1")
    s.pay((0.4, 0.6), "p.r1", "cs_1")
    s.release((0.5, 0.7), "p.r1", 409, "already_committed")  # the payment came first
    s.product((1.0, 1.1), "a", 3, 0, 2)
    s.checkout((1.2, 1.3), "p.r1", "cs_1")  # the same session, whatever the status
    assert verdict_of(s, initial({"a": 3})).verdict == "ok"


def test_a_checkout_racing_a_release_may_have_recorded_its_session() -> None:
    s = Script()
    s.hold((0.0, 0.1), [["a", 1]], "p.r1")
    s.checkout((0.2, 0.6), "p.r1", None, 409, "reservation_not_held")
    s.release((0.3, 0.4), "p.r1")
    s.checkout((1.0, 1.1), "p.r1", "cs_1")  # the session the refused checkout recorded
    assert verdict_of(s, initial({"a": 1})).verdict == "ok"
    s.checkout((1.2, 1.3), "p.r1", "cs_2")
    assert verdict_of(s, initial({"a": 1})).verdict == "fail"


def test_a_memory_refusal_within_the_window_passes() -> None:
    s = Script()
    s.hold((0.0, 0.1), [["a", 1]], "p.r1")
    s.release((1.0, 1.1), "p.r1")
    s.sold_out((1.2, 1.25), "a")  # the memory saw 0 left 0.1 s before the units came back
    assert verdict_of(s, initial({"a": 1})).verdict == "ok"


# ---- not linearizable --------------------------------------------------------------------


def test_an_oversell_two_holds_of_the_last_unit() -> None:
    s = Script()
    first = s.hold((0.0, 1.0), [["a", 1]], "p.r1", process=1)
    second = s.hold((0.1, 0.9), [["a", 1]], "p.r2", process=2)
    verdict = verdict_of(s, initial({"a": 1}))
    assert verdict.verdict == "fail"
    assert {first.id, second.id} <= shown(verdict)
    assert blocking(verdict) == [second.id]  # the first to return that nothing explains
    assert "insufficient_stock" in verdict.text()


def test_an_under_sell_a_refusal_while_units_were_free_all_along() -> None:
    s = Script()
    s.product((0.0, 0.1), "a", 2, 0)
    refusal = s.refuse(
        (1.0, 1.1),
        [["a", 1]],
        "insufficient_stock",
        {"sku": "a", "requested": 1, "available": 0},
    )
    verdict = verdict_of(s, initial({"a": 2}))
    assert verdict.verdict == "fail"
    assert blocking(verdict) == [refusal.id]
    assert "2 available" in verdict.text()


def test_a_memory_that_never_lapses_is_caught_beyond_its_window() -> None:
    s = Script()
    s.hold((0.0, 0.1), [["a", 1]], "p.r1")
    s.sold_out((0.2, 0.3), "a")  # fresh: 0 left
    s.release((1.0, 1.1), "p.r1")
    late = s.sold_out((3.0, 3.05), "a")  # two seconds after the unit came back
    verdict = verdict_of(s, initial({"a": 1}))
    assert verdict.verdict == "fail"
    assert blocking(verdict) == [late.id]
    assert verdict_of(s, initial({"a": 1}), soldout_window=2.5).verdict == "ok"


def test_a_product_read_older_than_the_read_window() -> None:
    s = Script()
    s.hold((0.0, 0.1), [["a", 1]], "p.r1")
    stale = s.product((1.0, 1.1), "a", 3, 0)  # still sees the unit free a second later
    verdict = verdict_of(s, initial({"a": 3}))
    assert verdict.verdict == "fail"
    assert blocking(verdict) == [stale.id]
    assert verdict_of(s, initial({"a": 3}), read_window=1.0).verdict == "ok"


def test_a_release_that_returns_the_units_twice() -> None:
    s = Script()
    s.hold((0.0, 0.1), [["a", 1]], "p.r1", process=1)
    s.hold((0.2, 0.3), [["a", 1]], "p.r2", process=2)
    s.release((0.4, 0.5), "p.r1", process=1)
    s.release((0.6, 0.7), "p.r1", process=1)  # again: 200, and nothing must come back
    read = s.product((1.0, 1.1), "a", 2, 0)  # p.r2 still holds one
    verdict = verdict_of(s, initial({"a": 2}))
    assert verdict.verdict == "fail"
    assert blocking(verdict) == [read.id]
    assert "reserved=1" in verdict.text()


def test_a_second_hold_under_the_same_key() -> None:
    s = Script()
    s.hold((0.0, 0.1), [["a", 1]], "p.r1", customer="c1", key="k")
    again = s.hold((0.2, 0.3), [["a", 1]], "p.r2", customer="c1", key="k")
    verdict = verdict_of(s, initial({"a": 5}))
    assert verdict.verdict == "fail"
    assert blocking(verdict) == [again.id]


def test_the_window_prints_operations_answers_and_states() -> None:
    s = Script()
    s.hold((0.0, 1.0), [["a", 1]], "p.r1", process=1)
    s.hold((0.1, 0.9), [["a", 1]], "p.r2", process=2)
    text = verdict_of(s, initial({"a": 1})).text()
    assert "pool p: not linearizable" in text
    assert "model state 1: a: reserved 1 sold 0 available 0 of 1" in text
    assert "p.r2" in text
    assert "p.r1" in text


# ---- histories the model makes ------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_histories_made_by_the_model_always_pass(seed: int) -> None:
    shape = Shape(operations=240, pools=1, clients=6, stock=3, unknown=0.05, stale=0.02)
    setup, operations = synthetic(shape, seed)
    verdict = check(
        operations, initial=setup, soldout_window=0.0, read_window=0.02, budget_seconds=30
    )
    assert verdict.verdict == "ok", verdict.text()


BLOCKED_BY = {
    "oversell": {"reserve", "read_product"},  # a hold the stock could not give, or a read of it
    "memory": {"reserve"},  # a refusal while units were free, beyond the window
    "double_release": {"read_product", "reserve", "read_reservation"},  # more back than held
}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("fault", FAULTS)
def test_a_planted_fault_is_caught_in_a_long_history(fault: str, seed: int) -> None:
    shape = Shape(operations=800, pools=2, clients=8, fault=fault)
    setup, operations = synthetic(shape, seed)
    verdict = check(operations, initial=setup, **WINDOWS)
    assert verdict.verdict == "fail"
    windows = [pool.window for pool in verdict.pools if pool.window is not None]
    assert windows
    for window in windows:
        (stopped,) = [row for row in window.rows if row.blocking]
        assert stopped.kind in BLOCKED_BY[fault]
        assert len(window.rows) < 40  # a window, not the history
    assert shape.fault is not None
    clean = check(synthetic(Shape(operations=800, pools=2), seed)[1], initial=setup, **WINDOWS)
    assert clean.verdict == "ok"


def test_two_thousand_operations_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    setup, operations = synthetic(Shape(operations=2000, pools=4, clients=8), 7)
    started = time.monotonic()
    verdict = check(operations, initial=setup, soldout_window=0.3, read_window=0.2)
    took = time.monotonic() - started
    with capsys.disabled():
        print(f"\n2000 operations, 4 pools, 8 clients: checked in {took:.2f} s")
    assert verdict.verdict == "ok"
    assert sum(pool.operations for pool in verdict.pools) == len(operations)


def test_a_pool_without_products_set_up_is_refused() -> None:
    s = Script()
    s.product((0.0, 0.1), "a", 1, 0)
    stray = Operation(99, 0, "elsewhere", "read_product", {"sku": "x"}, 0.0, 0.1, s.ops[0].outcome)
    with pytest.raises(ValueError, match="elsewhere"):
        check([*s.ops, stray], initial=initial({"a": 1}), **WINDOWS)
    assert POOL == "p"


def test_the_command_checks_a_recorded_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = Script()
    s.hold((0.0, 1.0), [["a", 1]], "p.r1", process=1)
    s.hold((0.1, 0.9), [["a", 1]], "p.r2", process=2)
    history.write(tmp_path / "history.jsonl", s.ops)
    initial_record.write(tmp_path / "initial.json", initial({"a": 1}))
    files = [str(tmp_path / "history.jsonl"), str(tmp_path / "initial.json")]
    assert main([*files, "--json", str(tmp_path / "verdict.json")]) == 1
    assert "not linearizable" in capsys.readouterr().out
    saved = json.loads((tmp_path / "verdict.json").read_text())
    assert [row["op"] for row in saved["pools"][0]["window"]["rows"]] == [0, 1]
    initial_record.write(tmp_path / "initial.json", initial({"a": 2}))
    assert main(files) == 0


def test_a_spent_budget_is_unknown_never_a_guess() -> None:
    setup, operations = synthetic(Shape(operations=2000, pools=1, clients=8), 3)
    verdict = check(
        operations, initial=setup, soldout_window=0.3, read_window=0.2, budget_seconds=1e-9
    )
    assert verdict.verdict == "unknown"
    assert [pool.verdict for pool in verdict.pools] == ["unknown"]
    json.dumps(verdict.to_json())


def test_the_deepest_point_of_a_spent_budget_is_a_hint_not_a_proof() -> None:
    s = Script()
    s.hold((0.0, 1.0), [["a", 1]], "p.r1", process=1)
    s.hold((0.1, 0.9), [["a", 1]], "p.r2", process=2)
    setup = initial({"a": 1})
    model = PoolModel(setup.pool(POOL), setup.hold_cap)
    found = search(model, s.ops, [op.invoked for op in s.ops], 30.0)
    assert found.verdict == "fail"
    hint = explain.window(model, POOL, replace(found, verdict="unknown"), {})
    assert not hint.proven
    assert "undecided (budget spent; not a proof)" in hint.text()
    assert explain.window(model, POOL, found, {}).proven


def test_pools_checked_in_processes_of_their_own_give_the_same_verdict() -> None:
    setup, operations = synthetic(Shape(operations=800, pools=4, fault="oversell"), 2)
    alone = check(operations, initial=setup, **WINDOWS)
    together = check(operations, initial=setup, **WINDOWS, workers=2)
    assert alone.verdict == together.verdict == "fail"
    assert [pool.to_json()["window"] for pool in alone.pools] == [
        pool.to_json()["window"] for pool in together.pools
    ]


def test_a_release_refused_as_paid_before_the_webhook_commits() -> None:
    """usecases: the release asks Stripe to expire the session, Stripe says the buyer paid:
    409 already_committed, and a read before the webhook still sees the hold."""
    s = Script()
    s.hold((0.0, 0.1), [["a", 1]], "p.r1")
    s.checkout((0.2, 0.3), "p.r1", "cs_1")
    s.pay((0.4, 2.0), "p.r1", "cs_1")
    s.release((0.5, 0.6), "p.r1", 409, "already_committed")
    s.reservation((0.7, 0.8), "p.r1", "held", [["a", 1]])
    s.reservation((2.1, 2.2), "p.r1", "committed", [["a", 1]])
    assert verdict_of(s, initial({"a": 1})).verdict == "ok"
    unpaid = Script()
    unpaid.hold((0.0, 0.1), [["a", 1]], "p.r1")
    unpaid.checkout((0.2, 0.3), "p.r1", "cs_1")
    unpaid.release((0.5, 0.6), "p.r1", 409, "already_committed")  # nobody paid
    assert verdict_of(unpaid, initial({"a": 1})).verdict == "fail"
