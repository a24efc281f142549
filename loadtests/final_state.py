"""The end of a run of a purchase plan, keyed by the plan's buyers, and two ends compared.

What a run ended in is read in values that mean the same in any run of the same plan: per
buyer (its customer id), never by the reservation, session or payment ids a run made. `compare`
is a pure function over two such ends, so that a difference can be shown to be found
(tests/test_chaos_compare.py); loadtests/chaos_compare.py reads and compares them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadtests.purchase_plan import Trace
from loadtests.verify import World


@dataclass(frozen=True, slots=True)
class OrderState:
    status: str
    lines: tuple[tuple[str, int, int], ...]  # (sku, quantity, unit_amount)
    amount_total: int
    currency: str


@dataclass(frozen=True, slots=True)
class BuyerState:
    """One buyer's end, in values that mean the same in any run (no ids, no times)."""

    reservation: str | None  # its status; None: never reserved (or forgotten)
    orders: tuple[OrderState, ...]  # every order of its reservation (one, or none)
    sessions: tuple[tuple[str, str], ...]  # (status, payment_status) of each of its sessions
    refunds: tuple[tuple[int, str], ...]  # (amount, "ours" or "merchant") of each refund

    def text(self) -> str:
        orders = "; ".join(
            f"{o.status} {o.amount_total} {o.currency} {list(o.lines)}" for o in self.orders
        )
        sessions = ", ".join("/".join(pair) for pair in self.sessions) or "none"
        refunds = ", ".join(f"{amount} ({whose})" for amount, whose in self.refunds) or "none"
        return (
            f"reservation {self.reservation}, order {orders or 'none'}, sessions {sessions},"
            f" refunds {refunds}"
        )


@dataclass(frozen=True, slots=True)
class FinalState:
    buyers: Mapping[str, BuyerState]  # customer id -> its end
    skus: Mapping[str, tuple[int, int, int, int]]  # sku -> (stock, reserved, sold, available)
    totals: Mapping[str, int]  # "orders paid", "sessions complete/paid", "refunds", ...


@dataclass(frozen=True, slots=True)
class Difference:
    subject: str  # a customer id, "sku tee", "total orders paid"
    clean: str
    chaos: str

    def line(self) -> str:
        return f"{self.subject}: clean {self.clean} | chaos {self.chaos}"


def compare(clean: FinalState, chaos: FinalState) -> list[Difference]:
    """Every way the chaos run ended otherwise than the clean one: buyers (by customer id)
    first, then SKUs, then totals. Empty: the same end."""
    found = []
    for customer in sorted(set(clean.buyers) | set(chaos.buyers)):
        before, after = clean.buyers.get(customer), chaos.buyers.get(customer)
        if before != after:
            found.append(
                Difference(
                    customer,
                    before.text() if before else "no such buyer",
                    after.text() if after else "no such buyer",
                )
            )
    for sku in sorted(set(clean.skus) | set(chaos.skus)):
        if clean.skus.get(sku) != chaos.skus.get(sku):
            found.append(
                Difference(
                    f"sku {sku}", _counters(clean.skus.get(sku)), _counters(chaos.skus.get(sku))
                )
            )
    for name in sorted(set(clean.totals) | set(chaos.totals)):
        if clean.totals.get(name, 0) != chaos.totals.get(name, 0):
            found.append(
                Difference(
                    f"total {name}", str(clean.totals.get(name, 0)), str(chaos.totals.get(name, 0))
                )
            )
    return found


def _counters(level: tuple[int, int, int, int] | None) -> str:
    if level is None:
        return "not stocked"
    return "stock {}, reserved {}, sold {}, available {}".format(*level)


def summary(differences: Sequence[Difference], buyers: int, shown: int = 3) -> str:
    """One line for the report: none, or how many and the first few."""
    if not differences:
        return f"none: the {buyers:,} buyers, the SKUs and the totals end the same in both runs"
    first = "; ".join(difference.line() for difference in differences[:shown])
    return f"{len(differences)} differences, first: {first}"


def final_state(
    world: World,
    traces: Mapping[str, Trace],
    reservations: Mapping[str, str | None],
    products: Sequence[Mapping[str, Any]],
) -> FinalState:
    """The state a run ended in, keyed by buyer: from what the verifier read (`world`), the
    ids each buyer got in this run (`traces`), the reservations' statuses and the products as
    the service's API answers them."""
    orders = defaultdict(list)
    for order in world.orders:
        orders[order.reservation_id].append(
            OrderState(
                order.status.value,
                tuple((line.sku, line.quantity, line.unit_amount) for line in order.items),
                order.amount_total,
                order.currency,
            )
        )
    sessions = defaultdict(list)
    reservation_of_intent = {}
    for session in world.sessions:
        reservation_id = session.get("client_reference_id") or ""
        sessions[reservation_id].append((session["status"], session.get("payment_status") or ""))
        if session.get("payment_intent"):
            reservation_of_intent[session["payment_intent"]] = reservation_id
    refunds = defaultdict(list)
    for refund in world.refunds:
        whose = "ours" if (refund.get("metadata") or {}).get("reason") == "oversold" else "merchant"
        reservation_id = reservation_of_intent.get(refund.get("payment_intent") or "", "")
        refunds[reservation_id].append((int(refund["amount"]), whose))
    buyers = {}
    for customer, trace in traces.items():
        reservation_id = trace.reservation_id or ""
        buyers[customer] = BuyerState(
            reservations.get(reservation_id),
            tuple(sorted(orders[reservation_id], key=repr)),
            tuple(sorted(sessions[reservation_id])),
            tuple(sorted(refunds[reservation_id])),
        )
    totals: Counter[str] = Counter()
    totals.update(f"orders {order.status.value}" for order in world.orders)
    totals.update(f"sessions {s['status']}/{s.get('payment_status')}" for s in world.sessions)
    totals["refunds"] = len(world.refunds)
    totals["refunded amount"] = sum(int(refund["amount"]) for refund in world.refunds)
    held = {trace.reservation_id for trace in traces.values()}
    totals["orders of no buyer"] = sum(1 for o in world.orders if o.reservation_id not in held)
    skus = {
        p["sku"]: (int(p["stock"]), int(p["reserved"]), int(p["sold"]), int(p["available"]))
        for p in products
    }
    return FinalState(buyers, skus, dict(totals))
