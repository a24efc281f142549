"""`/pay/{id}`: a stand-in for Stripe's hosted Checkout page, with Pay and Cancel buttons."""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from reservation.stripesim import checkout
from reservation.stripesim.errors import JsonObject, StripeError
from reservation.stripesim.state import SimState

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Pay &ndash; Stripe simulator</title>
<style>body{{font:16px system-ui;max-width:32rem;margin:3rem auto}}td{{padding:.2rem .6rem}}
button{{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}}</style></head>
<body><h1>Checkout (simulated)</h1><p>Session <code>{id}</code>: <b>{status}</b></p>
<table>{rows}<tr><td><b>Total</b></td><td></td><td><b>{total}</b></td></tr></table>
{actions}</body></html>"""

ACTIONS = """<form method="post"><button name="action" value="pay">Pay</button>
<button name="action" value="cancel">Cancel</button></form>"""


def _money(amount: int | None, currency: str | None) -> str:
    return f"{(amount or 0) / 100:.2f} {(currency or '').upper()}"


def _render(session: JsonObject, items: list[JsonObject]) -> str:
    rows = "".join(
        f"<tr><td>{escape(item['description'] or '')}</td><td>&times; {item['quantity']}</td>"
        f"<td>{_money(item['amount_total'], item['currency'])}</td></tr>"
        for item in items
    )
    return PAGE.format(
        id=escape(session["id"]),
        status=escape(f"{session['status']} / {session['payment_status']}"),
        rows=rows,
        total=_money(session["amount_total"], session["currency"]),
        actions=ACTIONS if session["status"] == "open" else "",
    )


async def show(request: Request) -> Response:
    state: SimState = request.app.state.sim
    with state.lock:
        try:
            session = checkout.session(state.store, request.path_params["session"])
        except StripeError as error:
            return HTMLResponse(escape(error.message), status_code=404)
        return HTMLResponse(_render(session, state.store.line_items[session["id"]]))


async def act(request: Request) -> Response:
    """Pay: complete the session as paid, then go to its success_url; Cancel: expire it."""
    state: SimState = request.app.state.sim
    session_id = request.path_params["session"]
    action = parse_qs((await request.body()).decode()).get("action", [""])[0]
    try:
        if action == "pay":
            event = state.complete(session_id, "paid")
            target = event["data"]["object"]["success_url"]
        else:
            event = state.expire(session_id)
            target = event["data"]["object"]["cancel_url"]
    except StripeError as error:
        return HTMLResponse(escape(error.message), status_code=error.status)
    if not target:
        return RedirectResponse(f"/pay/{session_id}", status_code=303)
    return RedirectResponse(target.replace("{CHECKOUT_SESSION_ID}", session_id), status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/pay/{session}", show, methods=["GET"]),
        Route("/pay/{session}", act, methods=["POST"]),
    ]
