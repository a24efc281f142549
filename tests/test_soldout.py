"""The sold-out memory (reservation/soldout.py): once lapsed, one request asks Redis again
while the others are still refused."""

from __future__ import annotations

from domain.outcomes import OutOfStock
from domain.reservations import CartLine
from reservation.core.soldout import SoldOutMemory


def test_once_lapsed_one_request_asks_redis_and_the_others_are_still_refused() -> None:
    # The memory's clock is the test's: on the wall clock, 50 ms (the memory's length here)
    # is less than a busy machine may take between two lines of this test.
    now = [100.0]
    memory = SoldOutMemory(0.05, clock=lambda: now[0])
    cart = (CartLine("a", 1),)
    refused = OutOfStock("a", 1, 0)
    assert memory.refusal(cart) is None  # nothing known yet
    memory.remember(refused)
    now[0] += 0.04
    assert memory.refusal(cart) == refused
    now[0] += 0.02
    # The first request after the memory lapsed asks Redis; the crowd behind it is refused.
    assert memory.refusal(cart) is None
    assert [memory.refusal(cart) for _ in range(100)] == [refused] * 100
    # Redis said sold out again: remembered again.
    memory.remember(refused)
    assert memory.refusal(cart) == refused
    # Units came back and were held: the SKU is offered again at once.
    memory.forget(["a"])
    assert memory.refusal(cart) is None
    assert memory.refusal(cart) is None


def test_a_cart_is_refused_for_any_line_remembered() -> None:
    memory = SoldOutMemory(60)
    memory.remember(OutOfStock("b", 2, 0))
    cart = (CartLine("a", 1), CartLine("b", 3))
    assert memory.refusal(cart) == OutOfStock("b", 3, 0)
    # Only a refusal of 0 left is remembered, and nothing with the memory off.
    memory.remember(OutOfStock("a", 5, 2))
    assert memory.refusal((CartLine("a", 1),)) is None
    off = SoldOutMemory(0)
    off.remember(OutOfStock("a", 1, 0))
    assert off.refusal((CartLine("a", 1),)) is None


def test_a_refusal_never_rests_on_an_answer_older_than_two_periods() -> None:
    now = [100.0]
    memory = SoldOutMemory(0.1, clock=lambda: now[0])
    cart = (CartLine("a", 1),)
    refused = OutOfStock("a", 1, 0)
    memory.remember(refused)  # Redis said 0 left at 100.0
    # Nobody asked about "a" for a while: the next request asks Redis, and the crowd behind it
    # is not refused on the answer of 100.0, which is too old by now.
    now[0] = 100.35
    assert memory.refusal(cart) is None
    assert memory.refusal(cart) is None
    # Re-checked soon enough, the crowd is refused until two periods after Redis's answer.
    memory.remember(refused)  # at 100.35
    now[0] = 100.46
    assert memory.refusal(cart) is None  # lapsed: this one asks
    now[0] = 100.52
    assert memory.refusal(cart) == refused  # refused meanwhile, on the answer of 100.35
    now[0] = 100.56
    # Two periods after the answer, and the re-check has not answered: everybody asks.
    assert memory.refusal(cart) is None
    assert memory.refusal(cart) is None


def test_a_cart_re_checking_another_line_does_not_stretch_a_lines_memory() -> None:
    now = [100.0]
    memory = SoldOutMemory(0.1, clock=lambda: now[0])
    memory.remember(OutOfStock("b", 1, 0))  # at 100.0
    now[0] = 100.15
    # A cart of "b" and "c": "b" lapsed, so this request asks Redis (which refuses "c").
    assert memory.refusal((CartLine("b", 1), CartLine("c", 1))) is None
    memory.remember(OutOfStock("c", 1, 0))
    now[0] = 100.19
    assert memory.refusal((CartLine("b", 1),)) == OutOfStock("b", 1, 0)
    now[0] = 100.22
    # Nobody heard about "b" since 100.0: two periods on, a cart of "b" asks Redis.
    assert memory.refusal((CartLine("b", 1),)) is None
    assert memory.refusal((CartLine("b", 1),)) is None
    assert memory.refusal((CartLine("c", 1),)) == OutOfStock("c", 1, 0)
