"""The service as one sequential object per pool: what each answer may be, given the state.

The checker asks `PoolModel.successors(state, op)`: the states the operation may lead to when
it takes effect at that point. For an answered (`ok`) operation, the answer must be the one
the service gives from that state; no state means it cannot be explained there. For an
operation whose outcome is `unknown`, the answer is not checked: the successors are its
effects had it happened (none when it would change nothing); leaving it out is the checker's
other choice.

What is modelled (docs/api.md; reservation/lua/reserve.lua, release.lua, commit.lua):

- Per SKU `total` (the stock set up before the run: no PUT during it), `reserved` and `sold`;
  available = total - reserved - sold. Per customer: units held or bought of each SKU (the
  per-customer limit bounds them plus the request; without a customer id, the request alone)
  and live holds (the cap).
- reserve: refusals in reserve.lua's order: for each line in first-seen order (a SKU twice is
  summed) `insufficient_stock` (details.available then) and then `customer_limit_exceeded`,
  and after every line `hold_cap_reached`. A hold: `held`, reserved and usage up. An
  Idempotency-Key (scoped by the customer id) that stands for a reservation answers 201 with
  that reservation as it is now, whatever the stock says; a key whose request was refused
  binds nothing here (the service claims it but holds nothing: a retry is a fresh attempt
  under the claimed id, which the model cannot see).
- release: held -> released (units back); released -> 200 again, nothing back twice;
  committed -> 409 already_committed.
- checkout: held -> 201 with a new session (still held); asked again -> the same session,
  whatever the status; not held and no session -> 409 reservation_not_held (which may have
  recorded a session nobody saw: a release that ran while the session was being made, see
  usecases/checkout.py _released_meanwhile); 502 payment_provider_refused releases the hold.
- pay (the webhook of one Stripe event): paid: held -> committed (reserved to sold);
  committed stays; released -> committed late when every line's units are free now, else
  refused for good (reads `released`; every later payment refused too); failed / expired:
  held -> released, others stay.
- read_reservation: the status (and lines); read_product: stock, reserved, sold, available.
- A reserve of unknown outcome that held names its reservation `?<operation id>` (nobody saw
  its id) until a retry under its key answers with the id. A release answered
  `409 already_committed` while Stripe said the buyer had paid (the release asks Stripe to
  expire the session first) changes nothing: the webhook commits later, so a read between
  may still see `held`. It is explained for a held reservation with a session whose payment
  the history asked for.

Holds never lapse in the model: the recorder's runs hold for far longer than they last, so an
`expired` answer is unexplained here and says the run broke that assumption.

Answers that may be stale by design (the sold-out memory, the read cache): staleness.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from loadtests.linearizability.carts import Request, cart, read_request
from loadtests.linearizability.history import Operation, Outcome
from loadtests.linearizability.initial import DEFAULT_HOLD_CAP, Product
from loadtests.linearizability.state import (
    COMMITTED,
    HELD,
    REFUSED,
    RELEASED,
    SHOWN,
    UNKNOWN_SESSION,
    Items,
    Reservation,
    State,
)

Notes = list[str] | None  # where a reason for "cannot be explained" is written, when asked
NONE: tuple[State, ...] = ()


def answered(op: Operation, status: int, error: str | None, **fields: Any) -> bool:
    """Whether the answer is this one; fields the recorder did not write are not compared."""
    result = op.result
    if result.get("status") != status or result.get("error") != error:
        return False
    details = result.get("details") or {}
    for name, value in fields.items():
        if name == "details":
            if any(k in details and details[k] != v for k, v in value.items()):
                return False
        elif name in result and result[name] != value:
            return False
    return True


def _show(op: Operation) -> str:
    result = op.result
    shown = [str(result.get("status")), str(result.get("error") or "")]
    shown += [
        f"{name}={value}"
        for name, value in result.items()
        if name not in ("status", "error") and value not in (None, {}, [])
    ]
    return " ".join(part for part in shown if part)


def _note(notes: Notes, op: Operation, expected: str) -> tuple[State, ...]:
    if notes is not None:
        notes.append(f"the model answers {expected}; the service answered {_show(op)}")
    return NONE


class PoolModel:
    """The rules of one pool, its products fixed; states are `State`s."""

    def __init__(
        self,
        products: Iterable[Product],
        hold_cap: int = DEFAULT_HOLD_CAP,
        raced: frozenset[str] | None = None,
        paid: frozenset[str] | None = None,
    ) -> None:
        """`raced`: the reservations whose refused checkout may have recorded a session that
        matters (see checker.raced_checkouts); `paid`: the reservations a payment was asked
        for; None: any."""
        self.products = tuple(products)
        self.skus = tuple(product.sku for product in self.products)
        self.index = {sku: i for i, sku in enumerate(self.skus)}
        self.total = tuple(product.stock for product in self.products)
        self.limit = tuple(product.max_per_customer or 0 for product in self.products)
        self.hold_cap = hold_cap
        self.raced = raced
        self.paid = paid
        self._requests: dict[int, tuple[Operation, Request]] = {}

    def initial(self) -> State:
        return State.empty(len(self.skus))

    def available(self, state: State, sku: str) -> int:
        i = self.index[sku]
        return max(self.total[i] - state.reserved[i] - state.sold[i], 0)

    def step(self, state: State, op: Operation) -> State | None:
        """The first state `op` may lead to from `state`; None: its answer is unexplained."""
        found = self.successors(state, op)
        return found[0] if found else None

    def reason(self, state: State, op: Operation) -> str:
        """Why `op`'s answer cannot be explained from `state` ('' when it can)."""
        notes: list[str] = []
        found = self.successors(state, op, notes)
        return "" if found else "; ".join(notes) or "no state explains it"

    def successors(self, state: State, op: Operation, notes: Notes = None) -> tuple[State, ...]:
        handler = _HANDLERS[op.kind]
        return handler(self, state, op, notes)

    # ---- reserve -------------------------------------------------------------------------

    def refusal(
        self, state: State, items: Items, customer: str | None
    ) -> tuple[str, dict[str, Any]] | None:
        """reserve.lua's refusal of this cart from this state, in its order; None: it holds."""
        for sku, qty in items:
            i = self.index[sku]
            available = max(self.total[i] - state.reserved[i] - state.sold[i], 0)
            if qty > available:
                return "insufficient_stock", {"sku": sku, "requested": qty, "available": available}
            already = state.usage.get((sku, customer), 0) if customer else 0
            if self.limit[i] and already + qty > self.limit[i]:
                return "customer_limit_exceeded", {"sku": sku, "limit": self.limit[i]}
        held = state.holds.get(customer, 0) if customer else 0
        if customer and self.hold_cap and held >= self.hold_cap:
            return "hold_cap_reached", {"limit": self.hold_cap, "held": held}
        return None

    def hold(
        self, state: State, rid: str, items: Items, customer: str | None, key: str | None
    ) -> State:
        reserved = list(state.reserved)
        for sku, qty in items:
            reserved[self.index[sku]] += qty
        return state.changed(
            reserved=tuple(reserved),
            put={rid: Reservation(HELD, items, customer)},
            bind={(customer, key): rid} if key else None,
            usage={(sku, customer): qty for sku, qty in items} if customer else None,
            holds={customer: 1} if customer else None,
        )

    def request(self, op: Operation) -> Request:
        """The reserve's arguments, read once per operation (the search asks about the same
        operation in many states)."""
        kept = self._requests.get(id(op))
        if kept is not None and kept[0] is op:
            return kept[1]
        request = read_request(op, self.index)
        self._requests[id(op)] = (op, request)  # the operation kept: its id is not reused
        return request

    def _reserve(self, state: State, op: Operation, notes: Notes) -> tuple[State, ...]:
        r = self.request(op)
        known = op.outcome is Outcome.OK
        if r.unknown_sku:
            if not known or answered(op, 404, "unknown_sku"):
                return (state,) if known else NONE
            return _note(notes, op, "404 unknown_sku")
        bound = state.keys.get((r.customer, r.key)) if r.key else None
        if bound is not None:
            return self._existing(state, op, bound, notes) if known else NONE
        if known and r.memory:
            sku = r.memory_sku
            if sku is not None and self.available(state, sku) == 0:
                return (state,)
            free = self.available(state, sku) if sku is not None else "not in the cart"
            return _note(notes, op, f"no refusal of {sku} ({free} available)")
        refused = self.refusal(state, r.items, r.customer)
        if not known:
            if refused is None:
                return (self.hold(state, r.rid, r.items, r.customer, r.key),)
            return NONE
        if refused is None:
            if answered(op, 201, None, state=HELD) and r.rid not in state.reservations:
                return (self.hold(state, r.rid, r.items, r.customer, r.key),)
            return _note(notes, op, f"201 held (a new reservation) for {cart_text(r.items)}")
        code, details = refused
        if answered(op, 409, code, details=details):
            return (state,)
        return _note(notes, op, f"409 {code} {details}")

    def _existing(self, state: State, op: Operation, rid: str, notes: Notes) -> tuple[State, ...]:
        """A key that stands for reservation `rid`: 201 with it as it is now, nothing held."""
        reservation = state.reservations[rid]
        given = str(op.result.get("id"))
        same = rid == given or (rid.startswith("?") and given not in state.reservations)
        if same and answered(op, 201, None, state=SHOWN[reservation.status]):
            if rid == given:
                return (state,)
            return (self._rename(state, rid, given),)
        return _note(notes, op, f"201 {rid} {SHOWN[reservation.status]} (its key's reservation)")

    def _rename(self, state: State, placeholder: str, rid: str) -> State:
        """A reservation made by an operation that may have happened, now seen by its id."""
        bind = {scope: rid for scope, bound in state.keys.items() if bound == placeholder}
        put = {rid: state.reservations[placeholder]}
        return state.changed(drop=placeholder, put=put, bind=bind)

    # ---- release, payment ----------------------------------------------------------------

    def give_back(self, state: State, rid: str, status: str = RELEASED) -> State:
        """A held reservation's units back: reserved, usage and live holds down."""
        reservation = state.reservations[rid]
        reserved = list(state.reserved)
        for sku, qty in reservation.items:
            reserved[self.index[sku]] -= qty
        customer = reservation.customer
        return state.changed(
            reserved=tuple(reserved),
            put={rid: _with_status(reservation, status)},
            usage={(sku, customer): -qty for sku, qty in reservation.items} if customer else None,
            holds={customer: -1} if customer else None,
        )

    def _release(self, state: State, op: Operation, notes: Notes) -> tuple[State, ...]:
        rid = str(op.args.get("id"))
        reservation = state.reservations.get(rid)
        known = op.outcome is Outcome.OK
        if reservation is None:
            return _absent(state, op, notes)
        if not known:
            return (self.give_back(state, rid),) if reservation.status == HELD else NONE
        if reservation.status == COMMITTED:
            if answered(op, 409, "already_committed"):
                return (state,)
            return _note(notes, op, f"409 already_committed ({rid} is committed)")
        if answered(op, 200, None, state=RELEASED):
            return (self.give_back(state, rid),) if reservation.status == HELD else (state,)
        if reservation.status == HELD and self._paid_at_stripe(rid, reservation):
            return (state,)  # Stripe said paid: its webhook commits it, maybe after a read
        return _note(notes, op, f"200 released ({rid} is {SHOWN[reservation.status]})")

    def _paid_at_stripe(self, rid: str, reservation: Reservation) -> bool:
        """A session, and a payment of it asked for (`paid`; None: any): Stripe may say paid."""
        return reservation.session is not None and (self.paid is None or rid in self.paid)

    def _pay(self, state: State, op: Operation, notes: Notes) -> tuple[State, ...]:
        rid = str(op.args.get("id"))
        reservation = state.reservations.get(rid)
        known = op.outcome is Outcome.OK
        if known and op.result.get("status", 200) != 200:
            return _note(notes, op, "200 (every event of a session of ours is acknowledged)")
        outcome = str(op.args.get("outcome"))
        after = state if reservation is None else self._paid(state, rid, outcome)
        return (after,) if known else ((after,) if after is not state else NONE)

    def _paid(self, state: State, rid: str, outcome: str) -> State:
        reservation = state.reservations[rid]
        if outcome != "paid":
            return self.give_back(state, rid) if reservation.status == HELD else state
        if reservation.status == HELD:
            sold = list(state.sold)
            for sku, qty in reservation.items:
                sold[self.index[sku]] += qty
            after = self.give_back(state, rid, COMMITTED)
            customer = reservation.customer
            usage = {(sku, customer): qty for sku, qty in reservation.items} if customer else None
            return after.changed(sold=tuple(sold), usage=usage)  # usage keeps what was bought
        if reservation.status != RELEASED:
            return state
        if any(qty > self.available(state, sku) for sku, qty in reservation.items):
            return state.changed(put={rid: _with_status(reservation, REFUSED)})
        sold = list(state.sold)
        for sku, qty in reservation.items:
            sold[self.index[sku]] += qty
        customer = reservation.customer
        return state.changed(
            sold=tuple(sold),
            put={rid: _with_status(reservation, COMMITTED)},
            usage={(sku, customer): qty for sku, qty in reservation.items} if customer else None,
        )

    # ---- checkout, reads -----------------------------------------------------------------

    def _checkout(self, state: State, op: Operation, notes: Notes) -> tuple[State, ...]:
        rid = str(op.args.get("id"))
        reservation = state.reservations.get(rid)
        known = op.outcome is Outcome.OK
        if reservation is None:
            return _absent(state, op, notes)
        session = op.result.get("session")
        if not known:
            if reservation.status != HELD or reservation.session is not None:
                return NONE
            made = state.changed(put={rid: _with_session(reservation, UNKNOWN_SESSION)})
            return (made, self.give_back(state, rid))
        if reservation.session not in (None, UNKNOWN_SESSION):
            if answered(op, 201, None, session=reservation.session):
                return (state,)
            return _note(notes, op, f"201 with its session {reservation.session}")
        if reservation.status == HELD or reservation.session == UNKNOWN_SESSION:
            if answered(op, 201, None) and session:
                return (state.changed(put={rid: _with_session(reservation, str(session))}),)
            if reservation.session is None and answered(op, 502, "payment_provider_refused"):
                return (self.give_back(state, rid),)
            return _note(notes, op, "201 with a new session")
        if answered(op, 409, "reservation_not_held"):
            # Released while its session was being made: the session is recorded (and expired
            # at Stripe), and a later checkout of it answers that session.
            if reservation.status != RELEASED or (self.raced is not None and rid not in self.raced):
                return (state,)
            return (state, state.changed(put={rid: _with_session(reservation, UNKNOWN_SESSION)}))
        return _note(notes, op, f"409 reservation_not_held ({rid} is {SHOWN[reservation.status]})")

    def _read_reservation(self, state: State, op: Operation, notes: Notes) -> tuple[State, ...]:
        reservation = state.reservations.get(str(op.args.get("id")))
        if reservation is None:
            if answered(op, 404, "not_found"):
                return (state,)
            return _note(notes, op, "404 not_found")
        status = SHOWN[reservation.status]
        lines = op.result.get("items")
        same_lines = lines is None or sorted(cart(lines)) == sorted(reservation.items)
        if answered(op, 200, None, state=status) and same_lines:
            return (state,)
        return _note(notes, op, f"200 {status} {cart_text(reservation.items)}")

    def _read_product(self, state: State, op: Operation, notes: Notes) -> tuple[State, ...]:
        sku = str(op.args.get("sku"))
        if sku not in self.index:
            return (state,) if answered(op, 404, "unknown_sku") else _note(notes, op, "404")
        i = self.index[sku]
        counts = {
            "stock": self.total[i],
            "reserved": state.reserved[i],
            "sold": state.sold[i],
            "available": self.available(state, sku),
        }
        if answered(op, 200, None, **counts):
            return (state,)
        return _note(notes, op, "200 " + " ".join(f"{k}={v}" for k, v in counts.items()))


def _absent(state: State, op: Operation, notes: Notes) -> tuple[State, ...]:
    """An operation on a reservation the model does not have: 404, and no effect."""
    if op.outcome is not Outcome.OK:
        return NONE
    return (state,) if answered(op, 404, "not_found") else _note(notes, op, "404 not_found")


def _with_status(reservation: Reservation, status: str) -> Reservation:
    return Reservation(status, reservation.items, reservation.customer, reservation.session)


def _with_session(reservation: Reservation, session: str) -> Reservation:
    return Reservation(reservation.status, reservation.items, reservation.customer, session)


def cart_text(items: Items) -> str:
    return ",".join(f"{sku}x{qty}" for sku, qty in items)


Handler = Callable[[PoolModel, State, Operation, Notes], tuple[State, ...]]
_HANDLERS: Mapping[str, Handler] = {
    "reserve": PoolModel._reserve,
    "release": PoolModel._release,
    "pay": PoolModel._pay,
    "checkout": PoolModel._checkout,
    "read_reservation": PoolModel._read_reservation,
    "read_product": PoolModel._read_product,
}
