"""`/pay/{id}`: a stand-in for Stripe's hosted Checkout page.

Plain HTML forms, no JavaScript, so a screen reader, a test or `curl` can pay too. An open
session offers four buttons, each one of driver.py's actions:

- Pay: the card succeeds (`checkout.session.completed`, paid), then on to the success URL;
- Decline: the card is declined (`payment_intent.payment_failed`); the session stays open and
  the page says so, so the buyer may try again;
- Pay later: a delayed method such as a bank transfer (`checkout.session.completed`, unpaid);
  the page then stands in for the bank, whose answer (`checkout.session.async_payment_succeeded`
  or `_failed`) the buyer picks, then on to the success URL;
- Cancel: the session expires (`checkout.session.expired`), then on to the cancel URL.
"""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from reservation.payments.money import display
from stripesim import checkout
from stripesim.errors import JsonObject, StripeError
from stripesim.state import SimState

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title} &ndash; Stripe simulator</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;
color:#1a1a1a;background:#fff}}
h1{{font-size:1.4rem}} table{{border-collapse:collapse;width:100%}}
th,td{{padding:.3rem .4rem;text-align:left}} td.n,th.n{{text-align:right}}
tfoot td{{font-weight:bold;border-top:1px solid #555}}
.actions{{display:flex;flex-wrap:wrap;gap:.6rem;margin:1.2rem 0}}
button{{font:inherit;padding:.6rem 1.1rem;border-radius:.4rem;border:2px solid #1a1a1a;
background:#fff;color:#1a1a1a;cursor:pointer;min-height:2.75rem}}
button.primary{{background:#1d4ed8;border-color:#1d4ed8;color:#fff}}
button:focus-visible,a:focus-visible{{outline:3px solid #b45309;outline-offset:2px}}
.note{{padding:.6rem .8rem;border-left:4px solid #b91c1c;background:#fef2f2}}
.info{{padding:.6rem .8rem;border-left:4px solid #1d4ed8;background:#eff6ff}}
a{{color:#1d4ed8}} .muted{{color:#4b5563;font-size:.9rem}}
code{{word-break:break-all}} caption{{text-align:left}}
</style></head>
<body><main>
<h1>{title}</h1>
<p class="muted">Simulated Stripe Checkout: no real card, no real money.
Session <code>{id}</code>, <span id="status">{status}</span>.</p>
{notice}
<table><caption class="muted">What you are paying for</caption>
<thead><tr><th scope="col">Item</th><th scope="col" class="n">Qty</th>
<th scope="col" class="n">Amount</th></tr></thead>
<tbody>{rows}</tbody>
<tfoot><tr><td>Total</td><td></td><td class="n">{total}</td></tr></tfoot></table>
{actions}
</main></body></html>"""

OPEN_ACTIONS = """<form method="post" class="actions" aria-label="Pay or cancel">
<button class="primary" name="action" value="pay">Pay</button>
<button name="action" value="decline">Decline</button>
<button name="action" value="pay_later">Pay later</button>
<button name="action" value="cancel">Cancel</button>
</form>
<p class="muted">Pay: the card succeeds. Decline: the card is refused and you may try again.
Pay later: a bank transfer that settles afterwards. Cancel: give up and go back to the shop.</p>"""

BANK_ACTIONS = """<div class="info" role="status">You chose to pay later: the shop has been told
the payment is pending. This page now stands in for your bank.</div>
<form method="post" class="actions" aria-label="The bank's answer">
<button class="primary" name="action" value="transfer_arrives">Transfer arrives</button>
<button name="action" value="transfer_fails">Transfer fails</button>
</form>
{back}"""

DECLINED = (
    '<p class="note" role="alert">Your card was declined. Nothing was charged: '
    "try again, pay later, or cancel.</p>"
)

TITLES = {
    "open": "Checkout",
    "complete": "Payment received",
    "expired": "Checkout cancelled",
}


def _money(amount: int | None, currency: str | None) -> str:
    return escape(display(amount or 0, (currency or "").lower()))


def _pending_transfer(state: SimState, session: JsonObject) -> bool:
    intent_id = session["payment_intent"]
    intent = state.store.payment_intents.get(intent_id) if intent_id else None
    return (
        session["status"] == "complete" and intent is not None and intent["status"] == "processing"
    )


def _link(url: str | None, session_id: str, text: str) -> str:
    if not url:
        return ""
    target = escape(url.replace("{CHECKOUT_SESSION_ID}", session_id))
    return f'<p><a href="{target}">{escape(text)}</a></p>'


def _render(state: SimState, session: JsonObject, declined: bool) -> str:
    items = state.store.line_items[session["id"]]
    rows = "".join(
        f"<tr><td>{escape(item['description'] or '')}</td><td class='n'>{item['quantity']}</td>"
        f"<td class='n'>{_money(item['amount_total'], item['currency'])}</td></tr>"
        for item in items
    )
    status = session["status"]
    notice, actions = "", ""
    if status == "open":
        notice = DECLINED if declined else ""
        actions = OPEN_ACTIONS
    elif _pending_transfer(state, session):
        back = _link(session["success_url"], session["id"], "Return to the shop for now")
        actions = BANK_ACTIONS.format(back=back)
    elif status == "complete":
        actions = _link(session["success_url"], session["id"], "Return to the shop")
    else:
        actions = _link(session["cancel_url"], session["id"], "Return to the shop")
    return PAGE.format(
        title=TITLES.get(status, "Checkout"),
        id=escape(session["id"]),
        status=escape(f"{status}, payment {session['payment_status']}"),
        notice=notice,
        rows=rows,
        total=_money(session["amount_total"], session["currency"]),
        actions=actions,
    )


def _error_page(message: str, status: int, session_id: str) -> HTMLResponse:
    body = PAGE.format(
        title="This checkout cannot do that",
        id=escape(session_id),
        status="unchanged",
        notice=f'<p class="note" role="alert">{escape(message)}</p>',
        rows="",
        total="",
        actions=f'<p><a href="/pay/{escape(session_id)}">Back to the checkout</a></p>',
    )
    return HTMLResponse(body, status_code=status)


async def show(request: Request) -> Response:
    state: SimState = request.app.state.sim
    with state.lock:
        try:
            session = checkout.session(state.store, request.path_params["session"])
        except StripeError as error:
            return HTMLResponse(escape(error.message), status_code=404)
        declined = request.query_params.get("declined") == "1"
        return HTMLResponse(_render(state, session, declined))


def _go(url: str | None, session_id: str) -> RedirectResponse:
    """On to the shop's URL (its {CHECKOUT_SESSION_ID} filled in), else back to this page."""
    if not url:
        return RedirectResponse(f"/pay/{session_id}", status_code=303)
    return RedirectResponse(url.replace("{CHECKOUT_SESSION_ID}", session_id), status_code=303)


async def act(request: Request) -> Response:
    """One button of the page (see the module's docstring); a 303 to where the buyer goes next."""
    state: SimState = request.app.state.sim
    session_id = request.path_params["session"]
    action = parse_qs((await request.body()).decode(errors="replace")).get("action", [""])[0]
    try:
        if action == "pay":
            event = state.complete(session_id, "paid")
            return _go(event["data"]["object"]["success_url"], session_id)
        if action == "decline":
            state.fail_session_payment(session_id)
            return RedirectResponse(f"/pay/{session_id}?declined=1", status_code=303)
        if action == "pay_later":
            state.complete(session_id, "unpaid")
            return RedirectResponse(f"/pay/{session_id}", status_code=303)
        if action in ("transfer_arrives", "transfer_fails"):
            event = state.async_payment(session_id, action == "transfer_arrives")
            return _go(event["data"]["object"]["success_url"], session_id)
        if action == "cancel":
            event = state.expire(session_id)
            return _go(event["data"]["object"]["cancel_url"], session_id)
    except StripeError as error:
        return _error_page(error.message, error.status, session_id)
    return _error_page(f"unknown action {action[:40]!r}", 400, session_id)


def routes() -> list[BaseRoute]:
    return [
        Route("/pay/{session}", show, methods=["GET"]),
        Route("/pay/{session}", act, methods=["POST"]),
    ]
