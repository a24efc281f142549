"""The money paths by their side effects: which Stripe calls were made, with which idempotency
keys, how many refunds exist, and which statuses an order went through — not only where the
state ends up."""

from __future__ import annotations

import copy
from itertools import pairwise
from typing import Any

import pytest

from domain.statuses import OrderStatus
from persistence.orders import STATUS_RANK
from reservation.usecases.payment_events import refund_key
from tests.conftest import age_hold
from tests.shop import MakeShop, Shop


async def checkout(shop: Shop, *items: tuple[str, int]) -> tuple[str, str]:
    answer = await shop.checkout(*items)
    assert answer.status_code == 201, answer.text
    return answer.json()["reservation_id"], answer.json()["checkout_session_id"]


async def counts(shop: Shop, sku: str = "tee") -> tuple[int, int, int]:
    product = await shop.product(sku)
    return product["reserved"], product["sold"], product["available"]


async def history(shop: Shop, session_id: str) -> list[str]:
    order = await shop.api.services.orders.get(session_id)
    assert order is not None
    return [status for status, _ in order.status_history]


async def delivered(shop: Shop, event: dict[str, Any], status: int = 200) -> None:
    answer = await shop.deliver(event)
    assert answer.status_code == status, answer.text


def with_new_id(event: dict[str, Any], event_id: str, event_type: str | None = None) -> Any:
    """The same payment told again by another event (Stripe sends several per session)."""
    return dict(event, id=event_id, type=event_type or event["type"])


async def oversold_payment(shop: Shop) -> tuple[str, dict[str, Any]]:
    """A buyer pays for 4 after their hold lapsed and the crowd took 3 of the 5: no stock left."""
    rid, session_id = await checkout(shop, ("tee", 4))
    services = shop.api.services
    await age_hold(services.redis, services.inventory.keys, rid)
    await checkout(shop, ("tee", 3))
    return session_id, shop.sim.complete(session_id, "paid")


def refund_requests(shop: Shop) -> list[dict[str, Any]]:
    return shop.sim.requests("POST", "/v1/refunds")


def assert_moves_up(statuses: list[str]) -> None:
    ranks = [STATUS_RANK[OrderStatus(status)] for status in statuses]
    assert ranks == sorted(ranks), statuses
    assert all(a != b for a, b in pairwise(statuses)), statuses


# -- a refund whose answer is lost ------------------------------------------------------------


async def test_a_lost_refund_answer_is_retried_under_one_key(shop: Shop) -> None:
    session_id, paid = await oversold_payment(shop)
    # Stripe makes the refund, then every answer to it is lost: the delivery fails (5xx) and
    # Stripe delivers the event again.
    shop.sim.fault("/v1/refunds", mode="reset_after", count=None)
    await delivered(shop, paid, 503)
    shop.sim.clear_faults()
    await delivered(shop, paid)
    requests = refund_requests(shop)
    assert len(requests) >= 2
    assert {r["idempotency_key"] for r in requests} == {f"refund-oversold-{session_id}"}
    assert refund_key(session_id) == refund_key(session_id) == f"refund-oversold-{session_id}"
    assert len(shop.sim.state.refunds) == 1
    stored = await shop.api.services.events.get(paid["id"])
    assert stored is not None
    assert stored["outcome"] == "refunded_oversold"
    (refund,) = shop.sim.state.refunds.values()
    assert refund["amount"] == 4 * 2500
    assert refund["metadata"] == {"reason": "oversold", "checkout_session_id": session_id}
    assert await history(shop, session_id) == ["paid", "refunded_oversold"]
    assert await counts(shop) == (3, 0, 2)


# -- payments told again after a refund -------------------------------------------------------

LATER_PAYMENTS = ["checkout.session.completed", "checkout.session.async_payment_succeeded"]


@pytest.mark.parametrize("later", LATER_PAYMENTS)
async def test_a_payment_after_our_oversold_refund_changes_nothing(shop: Shop, later: str) -> None:
    session_id, paid = await oversold_payment(shop)
    await delivered(shop, paid)
    before = len(refund_requests(shop)), await counts(shop)
    await delivered(shop, with_new_id(paid, "evt_later_payment", later))
    assert (len(refund_requests(shop)), await counts(shop)) == before
    assert len(shop.sim.state.refunds) == 1
    assert await history(shop, session_id) == ["paid", "refunded_oversold"]


class Died(BaseException):
    """The process ended here: no handler below runs, nothing is answered."""


@pytest.mark.parametrize("restock", [False, True])
async def test_our_oversold_refund_told_before_its_order_says_so_stays_ours(
    make_shop: MakeShop, monkeypatch: pytest.MonkeyPatch, restock: bool
) -> None:
    # The payment's handler asks Stripe for the oversold refund, then its process dies before
    # the order says refunded_oversold. Stripe's charge.refunded for that refund comes first.
    shop = await make_shop(restock_on_refund=restock)
    await shop.api.put_product("tee", 5, price=2500)
    session_id, paid = await oversold_payment(shop)
    webhooks = shop.api.services.webhooks.payments
    record_order = webhooks.record_order

    async def dies_after_the_refund(session: Any, cart: Any, status: OrderStatus) -> Any:
        if status is OrderStatus.REFUNDED_OVERSOLD:
            raise Died
        return await record_order(session, cart, status)

    monkeypatch.setattr(webhooks, "record_order", dies_after_the_refund)
    with pytest.raises(Died):
        await shop.deliver(paid)
    monkeypatch.undo()
    assert await history(shop, session_id) == ["paid"]
    (refunded,) = shop.sim.events("charge.refunded")
    await delivered(shop, refunded)
    assert await history(shop, session_id) == ["paid", "refunded_oversold"]
    await delivered(shop, paid)  # Stripe's redelivery of the payment the dead process took
    assert len(shop.sim.state.refunds) == 1
    assert await history(shop, session_id) == ["paid", "refunded_oversold"]
    assert await counts(shop) == (3, 0, 2)  # nothing sold, nothing restocked


@pytest.mark.parametrize("restock", [False, True])
@pytest.mark.parametrize("later", LATER_PAYMENTS)
async def test_a_payment_after_a_customer_refund_changes_nothing(
    make_shop: MakeShop, restock: bool, later: str
) -> None:
    shop = await make_shop(restock_on_refund=restock)
    await shop.api.put_product("tee", 5, price=2500)
    _, session_id = await checkout(shop, ("tee", 2))
    paid = shop.sim.complete(session_id, "paid")
    await delivered(shop, paid)
    await delivered(shop, shop.sim.refund_event(paid["data"]["object"]["payment_intent"]))
    settled = await counts(shop)
    assert settled == ((0, 0, 5) if restock else (0, 2, 3))
    await delivered(shop, with_new_id(paid, "evt_later_payment", later))
    stored = await shop.api.services.events.get("evt_later_payment")
    assert stored is not None
    assert stored["outcome"] == "refunded"
    # No second refund, no relabelling as our own oversold refund, nothing sold again.
    assert refund_requests(shop) == []
    assert len(shop.sim.state.refunds) == 1
    assert await history(shop, session_id) == ["paid", "refunded"]
    assert await counts(shop) == settled


# -- a refund racing its payment ---------------------------------------------------------------


async def test_a_refund_racing_its_payments_webhook_is_applied(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both events at once (found by the chaos-vs-clean drill, in its clean run): the refund's
    handler finds no order; the payment's webhook then lands whole and finds no refund kept; only
    then is the refund kept. One of the two must still apply it."""
    _, session_id = await checkout(shop, ("tee", 2))
    paid = shop.sim.complete(session_id, "paid")
    refunded = shop.sim.refund_event(paid["data"]["object"]["payment_intent"])
    orders = shop.api.services.orders
    lookup = orders.get_by_payment_intent

    async def then_the_payment_lands(payment_intent: str) -> Any:
        found = await lookup(payment_intent)
        monkeypatch.setattr(orders, "get_by_payment_intent", lookup)
        await delivered(shop, paid)
        return found

    monkeypatch.setattr(orders, "get_by_payment_intent", then_the_payment_lands)
    await delivered(shop, refunded)
    assert await history(shop, session_id) == ["paid", "refunded"]
    assert await counts(shop) == (0, 2, 3)  # refunded, the units stay sold (no restock)
    assert refund_requests(shop) == []


# -- partial refunds --------------------------------------------------------------------------


@pytest.mark.parametrize("restock", [False, True])
async def test_a_partial_refund_leaves_the_order_paid(make_shop: MakeShop, restock: bool) -> None:
    shop = await make_shop(restock_on_refund=restock)
    await shop.api.put_product("tee", 5, price=2500)
    _, session_id = await checkout(shop, ("tee", 2))
    paid = shop.sim.complete(session_id, "paid")
    await delivered(shop, paid)
    partial = shop.sim.refund_event(paid["data"]["object"]["payment_intent"], amount=1000)
    charge = partial["data"]["object"]
    assert (charge["refunded"], charge["amount_refunded"], charge["amount"]) == (False, 1000, 5000)
    await delivered(shop, partial)
    stored = await shop.api.services.events.get(partial["id"])
    assert stored is not None
    assert stored["outcome"] == "partial_refund"
    assert await history(shop, session_id) == ["paid"]
    assert await counts(shop) == (0, 2, 3)
    # The rest refunded later makes it a full refund.
    rest = shop.sim.refund_event(paid["data"]["object"]["payment_intent"])
    assert rest["data"]["object"]["refunded"] is True
    await delivered(shop, rest)
    assert await history(shop, session_id) == ["paid", "refunded"]
    assert await counts(shop) == ((0, 0, 5) if restock else (0, 2, 3))


# -- every delivery order of one payment's events ---------------------------------------------


async def test_the_status_history_only_moves_up_whatever_the_delivery_order(shop: Shop) -> None:
    _, session_id = await checkout(shop, ("tee", 1))
    completed = shop.sim.complete(session_id, "unpaid")
    succeeded = shop.sim.async_payment(session_id, succeeded=True)
    refunded = shop.sim.refund_event(succeeded["data"]["object"]["payment_intent"])
    for event in (refunded, succeeded, completed, refunded, succeeded):
        await delivered(shop, event)
    statuses = await history(shop, session_id)
    assert statuses[-1] == "refunded"
    assert_moves_up(statuses)


# -- reconcile after refunds ------------------------------------------------------------------


@pytest.mark.parametrize("restock", [False, True])
async def test_reconcile_counts_refunded_orders_as_the_refund_setting_says(
    make_shop: MakeShop, restock: bool
) -> None:
    shop = await make_shop(restock_on_refund=restock)
    await shop.api.put_product("tee", 5, price=2500)
    _, refunded_session = await checkout(shop, ("tee", 2))
    paid = shop.sim.complete(refunded_session, "paid")
    await delivered(shop, paid)
    await delivered(shop, shop.sim.refund_event(paid["data"]["object"]["payment_intent"]))
    _, kept_session = await checkout(shop, ("tee", 1))
    await delivered(shop, shop.sim.complete(kept_session, "paid"))
    expected = (0, 1, 4) if restock else (0, 3, 2)
    assert await counts(shop) == expected
    # Redis loses the pool; a new process rebuilds it from MongoDB at start.
    services = shop.api.services
    for key in services.inventory.keys.pool("default").shared:
        await services.redis.delete(key)
    fresh = await make_shop(sim=shop.sim, restock_on_refund=restock)
    assert await counts(fresh) == expected


async def test_a_payment_redis_forgot_still_counts_against_the_customers_limit(
    shop: Shop,
) -> None:
    await shop.api.put_product("lim", 5, price=900, max_per_customer=1)
    answer = await shop.checkout(("lim", 1), customer_id="cus_limited")
    assert answer.status_code == 201, answer.text
    rid, session_id = answer.json()["reservation_id"], answer.json()["checkout_session_id"]
    services = shop.api.services
    # Redis forgets the reservation and its hold lapses: only the session's metadata is left.
    await age_hold(services.redis, services.inventory.keys, rid)
    await services.inventory.holds.reclaim("default")
    await services.redis.delete(services.inventory.keys.pool("default").record(rid))
    await delivered(shop, shop.sim.complete(session_id, "paid"))
    assert await counts(shop, "lim") == (0, 1, 4)
    again = await shop.api.reserve(("lim", 1), customer_id="cus_limited")
    assert (again.status_code, again.json()["error"]) == (409, "customer_limit_exceeded")


async def test_a_refund_touches_only_the_order_it_refunds(shop: Shop) -> None:
    _, first = await checkout(shop, ("tee", 1))
    _, second = await checkout(shop, ("tee", 2))
    first_paid = shop.sim.complete(first, "paid")
    second_paid = shop.sim.complete(second, "paid")
    await delivered(shop, first_paid)
    await delivered(shop, second_paid)
    await delivered(shop, shop.sim.refund_event(second_paid["data"]["object"]["payment_intent"]))
    assert await history(shop, first) == ["paid"]
    assert await history(shop, second) == ["paid", "refunded"]


async def test_our_refund_of_a_charge_the_merchant_refunded_first_converges(shop: Shop) -> None:
    session_id, paid = await oversold_payment(shop)
    # The merchant refunds from the Dashboard before our webhook runs: Stripe then refuses
    # our refund as charge_already_refunded, which is as good as done.
    shop.sim.refund_event(paid["data"]["object"]["payment_intent"])
    await delivered(shop, paid)
    (ours,) = refund_requests(shop)
    assert ours["idempotency_key"] == f"refund-oversold-{session_id}"
    assert len(shop.sim.state.refunds) == 1  # the merchant's
    assert await history(shop, session_id) == ["paid", "refunded_oversold"]


async def test_lapsed_events_for_a_reservation_redis_forgot_converge(shop: Shop) -> None:
    rid, session_id = await checkout(shop, ("tee", 2))
    services = shop.api.services
    await services.redis.delete(services.inventory.keys.pool("default").record(rid))
    await delivered(shop, shop.sim.expire(session_id))  # nothing to release: acknowledged
    checkout_row = await services.checkouts.get(session_id)
    assert checkout_row is not None
    assert checkout_row.status.value == "expired"


async def test_an_order_takes_stripes_amount_and_an_expanded_intent(shop: Shop) -> None:
    _, session_id = await checkout(shop, ("tee", 2))
    paid = shop.sim.complete(session_id, "paid")
    session = paid["data"]["object"]
    intent = session["payment_intent"]
    without_amount = copy.deepcopy(paid)
    del without_amount["data"]["object"]["amount_total"]  # Stripe's amount, or nothing done
    await delivered(shop, without_amount, 400)
    assert await shop.api.services.orders.get(session_id) is None
    assert await shop.stored_events() == 0
    session["payment_intent"] = {"id": intent, "object": "payment_intent"}
    await delivered(shop, paid)
    order = await shop.api.services.orders.get(session_id)
    assert order is not None
    assert (order.amount_total, order.payment_intent) == (5000, intent)
    await shop.api.put_product("gift", 5, price=0)
    _, free_session = await checkout(shop, ("gift", 1))
    free = shop.sim.complete(free_session, "no_payment_required")
    assert free["data"]["object"]["amount_total"] == 0
    await delivered(shop, free)
    free_order = await shop.api.services.orders.get(free_session)
    assert free_order is not None
    assert free_order.amount_total == 0  # a free order is an amount too
