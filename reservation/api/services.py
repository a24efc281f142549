"""How a handler reaches the Services the app's lifespan opened (reservation/services.py)."""

from __future__ import annotations

from starlette.requests import Request

from reservation.services import Services

__all__ = ["Services", "services"]


def services(request: Request) -> Services:
    state: Services = request.app.state.services
    return state
