"""create_sim_app: the simulator as a Starlette app whose lifespan owns the webhook sender."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from stripesim import api, controls, page
from stripesim.settings import SimSettings
from stripesim.state import SimState
from stripesim.webhooks import WebhookSender


async def _sweep_expired(state: SimState, every_seconds: float) -> None:
    while True:
        await asyncio.sleep(every_seconds)
        state.expire_due()


def create_sim_app(settings: SimSettings | None = None) -> Starlette:
    """A Stripe-compatible server for `settings`; its state is `app.state.sim`."""
    settings = settings or SimSettings()
    state = SimState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sender = None
        if settings.webhook_url is not None:
            sender = WebhookSender(settings, state.record_delivery)
        state.attach(sender.submit if sender else None)
        sweeper = None
        if settings.expiry_sweep_seconds > 0:
            sweeper = asyncio.create_task(_sweep_expired(state, settings.expiry_sweep_seconds))
        try:
            yield
        finally:
            state.release_hangs()
            if sweeper is not None:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
            state.detach()
            if sender is not None:
                await sender.aclose()

    app = Starlette(routes=[*api.routes(), *controls.routes(), *page.routes()], lifespan=lifespan)
    app.state.sim = state
    return app
