"""The sequential model of a pool: each answer the service gives, from a state, step by step
(docs/api.md; reservation/lua/reserve.lua, release.lua, commit.lua)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.linearizability import initial as initial_record
from loadtests.linearizability.history import Operation
from loadtests.linearizability.initial import Initial, Product
from loadtests.linearizability.model import PoolModel
from loadtests.linearizability.quick import quick_test
from loadtests.linearizability.staleness import is_pure, stale_window
from loadtests.linearizability.state import State
from loadtests.linearizability.synthetic import Shape, synthetic
from tests.lin_histories import Script, initial

AT = (0.0, 0.1)
LOST = (0.0, None)


def model_of(stock: dict[str, int], limit: int | None = None, hold_cap: int = 5) -> PoolModel:
    setup = initial(stock, limit, hold_cap)
    return PoolModel(setup.pool("p"), setup.hold_cap)


def reached(model: PoolModel, ops: list[Operation]) -> list[State]:
    """Every state the operations may lead to in this order; each must be explained."""
    states = [model.initial()]
    for op in ops:
        after = [state for before in states for state in model.successors(before, op)]
        assert after, f"{op}: {model.reason(states[0], op)}"
        states = after
    return states


def run(model: PoolModel, ops: list[Operation]) -> State:
    return reached(model, ops)[0]


def refused(model: PoolModel, ops: list[Operation]) -> str:
    """The last operation must be unexplained after the others: the model's reason."""
    states = reached(model, ops[:-1])
    assert all(model.step(state, ops[-1]) is None for state in states)
    return model.reason(states[0], ops[-1])


def test_a_hold_sets_units_aside_and_a_refusal_says_how_many_are_left() -> None:
    model, s = model_of({"a": 3}), Script()
    s.hold(AT, [["a", 2]], "p.r1")
    s.refuse(AT, [["a", 2]], "insufficient_stock", {"sku": "a", "requested": 2, "available": 1})
    state = run(model, s.ops)
    assert (state.reserved, model.available(state, "a")) == ((2,), 1)
    s.refuse(AT, [["a", 2]], "insufficient_stock", {"sku": "a", "requested": 2, "available": 0})
    assert "insufficient_stock" in refused(model, s.ops)


def test_refusals_come_in_the_scripts_order() -> None:
    """Per line: stock, then the customer's limit; the hold cap after every line."""
    model, s = model_of({"a": 1, "b": 5}, limit=2, hold_cap=1), Script()
    s.hold(AT, [["b", 1]], "p.r1", customer="c1")
    limit = {"sku": "b", "limit": 2}
    s.refuse(AT, [["b", 2], ["a", 2]], "customer_limit_exceeded", limit, customer="c1")
    cap = {"limit": 1, "held": 1}
    s.refuse(AT, [["a", 1], ["b", 1]], "hold_cap_reached", cap, customer="c1")
    run(model, s.ops)
    s.refuse(AT, [["a", 2]], "customer_limit_exceeded", {"sku": "a", "limit": 2})
    assert "insufficient_stock" in refused(model, s.ops)


def test_a_limit_bounds_a_cart_without_a_customer_and_what_a_customer_bought() -> None:
    model, s = model_of({"a": 9}, limit=2), Script()
    s.refuse(AT, [["a", 1], ["a", 2]], "customer_limit_exceeded", {"sku": "a", "limit": 2})
    s.hold(AT, [["a", 2]], "p.r1", customer="c1")
    s.checkout(AT, "p.r1", "cs_1")
    s.pay(AT, "p.r1", "cs_1")
    s.refuse(AT, [["a", 1]], "customer_limit_exceeded", {"sku": "a", "limit": 2}, customer="c1")
    s.hold(AT, [["a", 2]], "p.r2", customer="c2")
    state = run(model, s.ops)
    assert state.holds == {"c2": 1}  # a paid hold frees its place under the cap


def test_the_same_key_returns_the_same_reservation_as_it_is_now() -> None:
    model, s = model_of({"a": 1}), Script()
    s.hold(AT, [["a", 1]], "p.r1", customer="c1", key="k")
    s.hold(AT, [["a", 1]], "p.r1", customer="c1", key="k")  # sold out: the key still finds it
    s.release(AT, "p.r1")
    s.hold(AT, [["a", 1]], "p.r1", customer="c1", key="k", state="released")
    s.hold(AT, [["a", 1]], "p.r2", customer="c2", key="k")  # another customer's key
    state = run(model, s.ops)
    assert state.reserved == (1,)
    s.hold(AT, [["a", 1]], "p.r3", customer="c1", key="k")
    assert "p.r1 released" in refused(model, s.ops)


def test_a_release_gives_units_back_once() -> None:
    model, s = model_of({"a": 2}), Script()
    s.hold(AT, [["a", 2]], "p.r1", customer="c1")
    s.release(AT, "p.r1")
    s.release(AT, "p.r1")
    s.release(AT, "p.unknown", 404, "not_found")
    state = run(model, s.ops)
    assert (state.reserved, state.usage, state.holds) == ((0,), {}, {})


def test_a_paid_reservation_is_not_released() -> None:
    model, s = model_of({"a": 2}), Script()
    s.hold(AT, [["a", 1]], "p.r1")
    s.checkout(AT, "p.r1", "cs_1")
    s.pay(AT, "p.r1", "cs_1")
    s.release(AT, "p.r1", 409, "already_committed")
    s.reservation(AT, "p.r1", "committed", [["a", 1]])
    state = run(model, s.ops)
    assert (state.reserved, state.sold) == ((0,), (1,))
    s.release(AT, "p.r1")
    assert "already_committed" in refused(model, s.ops)


def test_checkout_needs_a_hold_and_gives_the_same_session_again() -> None:
    model, s = model_of({"a": 2}), Script()
    s.hold(AT, [["a", 1]], "p.r1")
    s.checkout(AT, "p.r1", "cs_1")
    s.checkout(AT, "p.r1", "cs_1")
    s.hold(AT, [["a", 1]], "p.r2")
    s.release(AT, "p.r2")
    s.checkout(AT, "p.r2", None, 409, "reservation_not_held")
    s.release(AT, "p.r1")
    s.checkout(AT, "p.r1", "cs_1")  # whatever the status by then
    run(model, s.ops)
    s.checkout(AT, "p.r1", "cs_2")
    assert "cs_1" in refused(model, s.ops)


def test_a_checkout_that_lost_a_race_with_a_release_may_have_recorded_its_session() -> None:
    """usecases/checkout.py _released_meanwhile: the session was made and recorded, the hold
    was released meanwhile: 409, and asking again answers that session."""
    model, s = model_of({"a": 2}), Script()
    s.hold(AT, [["a", 1]], "p.r1")
    s.release(AT, "p.r1")
    s.checkout(AT, "p.r1", None, 409, "reservation_not_held")
    s.checkout(AT, "p.r1", "cs_9")
    s.checkout(AT, "p.r1", "cs_9")
    run(model, s.ops)
    s.checkout(AT, "p.r1", "cs_10")
    assert "cs_9" in refused(model, s.ops)


@pytest.mark.parametrize(("taken", "status"), [(0, "committed"), (1, "released")])
def test_a_late_payment_commits_if_the_units_are_free_else_is_refused_for_good(
    taken: int, status: str
) -> None:
    model, s = model_of({"a": 2}), Script()
    s.hold(AT, [["a", 1]], "p.r1", customer="c1")
    s.checkout(AT, "p.r1", "cs_1")
    s.release(AT, "p.r1")
    if taken:
        s.hold(AT, [["a", 2]], "p.r2")
    s.pay(AT, "p.r1", "cs_1")
    s.reservation(AT, "p.r1", status, [["a", 1]])
    if taken:
        s.release(AT, "p.r2")
        s.pay(AT, "p.r1", "cs_1")  # free again, but a refused payment stays refused
        s.reservation(AT, "p.r1", "released", [["a", 1]])
    state = run(model, s.ops)
    assert state.sold == (1 - taken,)
    assert state.usage == ({} if taken else {("a", "c1"): 1})


@pytest.mark.parametrize("outcome", ["failed", "expired"])
def test_a_failed_or_expired_checkout_releases_the_hold(outcome: str) -> None:
    model, s = model_of({"a": 2}), Script()
    s.hold(AT, [["a", 1]], "p.r1")
    s.checkout(AT, "p.r1", "cs_1")
    s.pay(AT, "p.r1", "cs_1", outcome)
    s.product(AT, "a", 2, 0)
    s.reservation(AT, "p.r1", "released", [["a", 1]])
    run(model, s.ops)


def test_a_product_read_gives_every_counter() -> None:
    model, s = model_of({"a": 3}), Script()
    s.hold(AT, [["a", 1]], "p.r1")
    s.product(AT, "a", 3, 1)
    run(model, s.ops)
    s.product(AT, "a", 3, 0)
    assert "reserved=1" in refused(model, s.ops)


def test_the_memory_refusal_needs_the_sku_sold_out_and_a_key_that_found_nothing() -> None:
    model, s = model_of({"a": 1}), Script()
    s.hold(AT, [["a", 1]], "p.r1", key="k")
    s.sold_out(AT, "a")
    run(model, s.ops)
    s.refuse(
        AT,
        [["a", 1]],
        "insufficient_stock",
        {"sku": "a", "requested": 1, "available": 0},
        key="k",
    )
    assert "its key's reservation" in refused(model, s.ops)


def test_an_unknown_operation_gives_its_effects_had_it_happened() -> None:
    model, s = model_of({"a": 1}), Script()
    lost = s.hold(LOST, [["a", 1]], "unseen", key="k")
    start = model.initial()
    (held,) = model.successors(start, lost)
    assert held.reserved == (1,)
    assert model.successors(held, lost) == ()  # its key stands for a reservation already
    retry = s.hold(AT, [["a", 1]], "p.r9", key="k")
    seen = model.step(held, retry)
    assert seen is not None
    assert list(seen.reservations) == ["p.r9"]  # the reservation it made, now seen by its id
    checkout = s.checkout(LOST, "p.r9", None)
    assert len(model.successors(seen, checkout)) == 2  # a session made, or the hold released


def test_stale_windows_and_pure_answers() -> None:
    s = Script()
    read = s.product(AT, "a", 1, 0)
    memory = s.sold_out(AT, "a")
    hold = s.hold(AT, [["a", 1]], "p.r1")
    assert [stale_window(op, 0.3, 0.2) for op in (read, memory, hold)] == [0.2, 0.3, 0.0]
    assert [is_pure(op) for op in (read, memory, hold)] == [True, True, False]


def test_states_reached_by_different_orders_are_equal() -> None:
    model, s = model_of({"a": 3, "b": 3}), Script()
    one = s.hold(AT, [["a", 1]], "p.r1", customer="c1")
    two = s.hold(AT, [["b", 1]], "p.r2", customer="c1")
    first, second = run(model, [one, two]), run(model, [two, one])
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second, model.initial()}) == 2


def test_the_initial_record_round_trips_through_json(tmp_path: Path) -> None:
    setup = Initial.of([Product("a", "p", 3, 2), Product("b", "q", 0)], hold_cap=4)
    path = tmp_path / "initial.json"
    initial_record.write(path, setup)
    assert initial_record.read(path) == setup
    assert json.loads(path.read_text())["products"][1]["max_per_customer"] is None
    assert setup.pools() == ["p", "q"]
    with pytest.raises(ValueError, match="twice"):
        Initial.of([Product("a", "p", 1), Product("a", "q", 1)])


@pytest.mark.parametrize("seed", range(4))
def test_the_quick_tests_agree_with_the_model(seed: int) -> None:
    """quick.py's tests of reads and memory refusals give what the model's path gives, in
    every state a synthetic history passes through."""
    shape = Shape(operations=300, pools=1, clients=4, stock=3, unknown=0.0)
    setup, operations = synthetic(shape, seed)
    model = PoolModel(setup.pool("p0"), setup.hold_cap)
    tested = [(op, quick_test(model, op)) for op in operations]
    assert any(test is not None for _, test in tested)
    states = [model.initial()]
    for op in operations:
        after = model.step(states[-1], op)
        if after is not None:
            states.append(after)
    for op, test in tested:
        if test is not None:
            for state in states[::7]:
                assert test(state) == bool(model.successors(state, op)), op
