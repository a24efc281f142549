"""The caller of a buyer's route: its `Authorization: Bearer` customer token, verified before
its body is read (reservation/customers/tokens.py). A token that does not verify answers 401
`invalid_customer_token` with `WWW-Authenticate: Bearer` (reservation/api/failures.py)."""

from __future__ import annotations

from starlette.requests import Request

from reservation.api.services import Services
from reservation.customers.caller import Caller


async def caller_of(state: Services, request: Request) -> Caller:
    """Who sent this request, as its customer token says (when customer ids are verified)."""
    return await state.customers.caller(request.headers.get("authorization"))
