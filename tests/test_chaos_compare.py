"""The chaos-vs-clean drill's plan and comparison (loadtests/purchase_plan.py,
loadtests/final_state.py), as pure functions: two runs whose ids differ end the same; an order
lost or a refund doubled in one of them is reported by buyer. The drill itself (two stacks,
minutes) runs as `python -m loadtests.drills --only chaos-vs-clean`, not here."""

from __future__ import annotations

from collections import Counter
from typing import Any

from domain.statuses import OrderStatus
from loadtests.final_state import FinalState, compare, final_state, summary
from loadtests.purchase_plan import CATALOG, Fate, Plan, Purchase, Trace, make_plan
from loadtests.verify import World
from persistence.orders import Order, OrderLine

PLAN = Plan(
    seed=0,
    purchases=(
        Purchase("cus_a", (("tee", 2),), Fate.PAID),
        Purchase("cus_b", (("cap", 1), ("mug", 1)), Fate.PARTLY_REFUNDED, 1000),
        Purchase("cus_c", (("socks", 3),), Fate.EXPIRED),
    ),
)
# What each fate ends as: (order status, session status/payment status, merchant refund).
ENDS: dict[Fate, tuple[OrderStatus | None, tuple[str, str], int | None]] = {
    Fate.PAID: (OrderStatus.PAID, ("complete", "paid"), None),
    Fate.PARTLY_REFUNDED: (OrderStatus.PAID, ("complete", "paid"), 1000),
    Fate.EXPIRED: (None, ("expired", "unpaid"), None),
}
PRODUCTS = [
    {"sku": "tee", "stock": 52, "reserved": 0, "sold": 2, "available": 50},
    {"sku": "cap", "stock": 51, "reserved": 0, "sold": 1, "available": 50},
]


def run(
    name: str, lose_order_of: str = "", refund_twice: str = ""
) -> tuple[World, dict[str, Trace], dict[str, str | None]]:
    """What one run of PLAN reads back, with ids of run `name`'s own, and the faults asked."""
    orders, sessions, refunds = [], [], []
    traces: dict[str, Trace] = {}
    statuses: dict[str, str | None] = {}
    for purchase in PLAN.purchases:
        rid, sid, intent = (f"default.{name}-{purchase.customer_id}-{part}" for part in "rsi")
        traces[purchase.customer_id] = Trace(rid, sid)
        status, (session_status, paid), refund = ENDS[purchase.fate]
        statuses[rid] = "committed" if status else "released"
        sessions.append(
            {
                "id": sid,
                "client_reference_id": rid,
                "status": session_status,
                "payment_status": paid,
                "payment_intent": intent if status else None,
                "amount_total": purchase.amount,
            }
        )
        if status is not None and purchase.customer_id != lose_order_of:
            lines = tuple(OrderLine(sku, n, CATALOG[sku][0]) for sku, n in purchase.lines)
            orders.append(Order(sid, rid, status, lines, purchase.amount, "eur", None, intent))
        for _ in range(2 if purchase.customer_id == refund_twice else 1 if refund else 0):
            refunds.append({"id": f"re_{name}", "amount": refund, "payment_intent": intent})
    return World([], {}, orders, {}, sessions, refunds), traces, statuses


def state(name: str, **faults: str) -> FinalState:
    world, traces, statuses = run(name, **faults)
    return final_state(world, traces, statuses, PRODUCTS)


def test_two_runs_with_different_ids_end_the_same() -> None:
    clean, chaos = state("clean"), state("chaos")
    assert compare(clean, chaos) == []
    assert summary([], 3).startswith("none: the 3 buyers")
    paid = clean.buyers["cus_b"]
    assert paid.reservation == "committed"
    assert [order.status for order in paid.orders] == ["paid"]
    assert paid.orders[0].lines == (("cap", 1, 1200), ("mug", 1, 1500))
    assert paid.refunds == ((1000, "merchant"),)
    assert clean.buyers["cus_c"].orders == ()
    assert clean.totals["orders paid"] == 2
    assert clean.totals["orders of no buyer"] == 0
    assert clean.skus["tee"] == (52, 0, 2, 50)


def test_an_order_lost_in_one_run_is_reported_by_its_buyer() -> None:
    differences = compare(state("clean"), state("chaos", lose_order_of="cus_a"))
    assert [d.subject for d in differences] == ["cus_a", "total orders paid"]
    assert "order paid 5000 eur [('tee', 2, 2500)]" in differences[0].clean
    assert "order none" in differences[0].chaos
    assert (differences[1].clean, differences[1].chaos) == ("2", "1")
    text = summary(differences, 3)
    assert text.startswith("2 differences, first: cus_a: clean reservation committed")


def test_a_refund_doubled_in_one_run_is_reported_by_its_buyer() -> None:
    differences = compare(state("clean"), state("chaos", refund_twice="cus_b"))
    subjects = [d.subject for d in differences]
    assert subjects == ["cus_b", "total refunded amount", "total refunds"]
    assert differences[0].clean.endswith("refunds 1000 (merchant)")
    assert differences[0].chaos.endswith("refunds 1000 (merchant), 1000 (merchant)")


def test_an_order_of_no_buyer_and_a_sku_apart_are_reported() -> None:
    world, traces, statuses = run("chaos")
    stray = Order("cs_stray", "default.stray", OrderStatus.PAID, (), 0, "eur")
    world.orders.append(stray)
    products: list[dict[str, Any]] = [dict(PRODUCTS[0], sold=3, available=49), PRODUCTS[1]]
    chaos = final_state(world, traces, statuses, products)
    differences = compare(state("clean"), chaos)
    assert [d.subject for d in differences] == [
        "sku tee",
        "total orders of no buyer",
        "total orders paid",
    ]
    assert differences[0].chaos == "stock 52, reserved 0, sold 3, available 49"


def test_a_plan_is_its_seeds_and_asks_less_than_the_stock() -> None:
    plan = make_plan(1500, seed=12)
    assert plan == make_plan(1500, seed=12)
    assert plan != make_plan(1500, seed=13)
    assert len({purchase.customer_id for purchase in plan.purchases}) == 1500
    assert set(Counter(purchase.fate for purchase in plan.purchases)) == set(Fate)
    demand: Counter[str] = Counter()
    for purchase in plan.purchases:
        for sku, quantity in purchase.lines:
            demand[sku] += quantity
            limit = CATALOG[sku][1]
            assert limit is None or quantity <= limit
        if purchase.fate is Fate.PARTLY_REFUNDED:
            assert purchase.refund_amount is not None
            assert 0 < purchase.refund_amount < purchase.amount
        else:
            assert purchase.refund_amount is None
    assert all(plan.stock()[sku] > demand[sku] for sku in CATALOG)
