"""Payment intents, their charges, and refunds."""

from __future__ import annotations

from stripesim.errors import JsonObject, invalid, missing_param, no_such
from stripesim.params import Params
from stripesim.store import Origin, Store, new_id

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
DECLINE = {
    "code": "card_declined",
    "decline_code": "generic_decline",
    "message": "Your card was declined.",
    "type": "card_error",
}


def payment_intent(
    store: Store, intent_id: str, param: str = "intent", status: int = 404
) -> JsonObject:
    found = store.payment_intents.get(intent_id)
    if found is None:
        raise no_such("payment_intent", intent_id, param, status)
    return found


def intent_for(store: Store, session: JsonObject, now: float) -> JsonObject:
    """The session's payment intent, made on the buyer's first attempt to pay."""
    if session["payment_intent"] is not None:
        return store.payment_intents[session["payment_intent"]]
    intent: JsonObject = {
        "id": new_id("pi"),
        "object": "payment_intent",
        "amount": session["amount_total"] or 0,
        "amount_received": 0,
        "currency": session["currency"],
        "created": int(now),
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": dict(store.intent_metadata.get(session["id"], {})),
        "status": "requires_payment_method",
    }
    store.payment_intents[intent["id"]] = intent
    session["payment_intent"] = intent["id"]
    return intent


def succeed(store: Store, intent: JsonObject, now: float) -> JsonObject:
    """The money arrived: the intent succeeds with a charge."""
    charge: JsonObject = {
        "id": new_id("ch"),
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"],
        "amount_refunded": 0,
        "captured": True,
        "created": int(now),
        "currency": intent["currency"],
        "livemode": False,
        "metadata": {},
        "paid": True,
        "payment_intent": intent["id"],
        "refunded": False,
        "status": "succeeded",
    }
    store.charges[charge["id"]] = charge
    intent.update(
        status="succeeded",
        amount_received=intent["amount"],
        latest_charge=charge["id"],
        last_payment_error=None,
    )
    return charge


def decline(intent: JsonObject) -> None:
    intent.update(status="requires_payment_method", last_payment_error=dict(DECLINE))


def charge_of(store: Store, intent: JsonObject, param: str) -> JsonObject:
    if intent["status"] != "succeeded" or intent["latest_charge"] is None:
        raise invalid(
            f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
            param,
            "payment_intent_unexpected_state",
        )
    charge: JsonObject = store.charges[intent["latest_charge"]]
    return charge


def refund(
    store: Store,
    charge: JsonObject,
    now: float,
    amount: int | None = None,
    metadata: dict[str, str] | None = None,
    reason: str | None = None,
) -> JsonObject:
    """Refund `amount` (default: all that is left) of a charge."""
    left = charge["amount"] - charge["amount_refunded"]
    if left == 0:
        raise invalid(
            f"Charge {charge['id']} has already been refunded.", None, "charge_already_refunded"
        )
    if amount is None:
        amount = left
    if amount > left:
        raise invalid(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
            "amount",
            "amount_too_large",
        )
    created: JsonObject = {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "charge": charge["id"],
        "created": int(now),
        "currency": charge["currency"],
        "metadata": metadata or {},
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "status": "succeeded",
    }
    store.refunds[created["id"]] = created
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    return created


def create_refund(
    store: Store, params: Params, now: float, origin: Origin, emit_event: bool
) -> JsonObject:
    """`POST /v1/refunds` by `payment_intent` or `charge`."""
    intent_id = params.string("payment_intent")
    charge_id = params.string("charge")
    if intent_id is not None:
        intent = payment_intent(store, intent_id, "payment_intent", status=400)
        charge = charge_of(store, intent, "payment_intent")
    elif charge_id is not None:
        if charge_id not in store.charges:
            raise no_such("charge", charge_id, "charge", status=400)
        charge = store.charges[charge_id]
    else:
        raise missing_param("payment_intent")
    amount = params.integer("amount", minimum=1)
    reason = params.choice("reason", REFUND_REASONS)
    created = refund(store, charge, now, amount, params.metadata(), reason)
    if emit_event:
        store.emit("charge.refunded", charge, now, origin)
    return created


def matching_refunds(store: Store, params: Params) -> list[JsonObject]:
    intent_id = params.string("payment_intent")
    charge_id = params.string("charge")
    found = [
        r
        for r in store.refunds.values()
        if (intent_id is None or r["payment_intent"] == intent_id)
        and (charge_id is None or r["charge"] == charge_id)
    ]
    return found[::-1]
