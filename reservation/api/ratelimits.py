"""The client address a handler hands its use case for the rate limit per client address.

The limits themselves are counted by the use cases (reservation/usecases/limits.py): POST
/v1/reservations counts the address once its body is read and the sold-out memory has not
refused it (usecases/hold.py); POST /v1/checkout counts it before its body is read
(usecases/checkout.py). A refusal is 429 `rate_limited` with Retry-After, before anything is
held or Stripe is asked."""

from __future__ import annotations

from starlette.requests import Request

from reservation.api.client_address import client_address
from reservation.api.services import Services


def counted_address(state: Services, request: Request) -> str:
    """The address the limit per client counts this request under."""
    return client_address(request, state.settings.trusted_proxy_header)
