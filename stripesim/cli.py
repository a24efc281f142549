"""`reservation stripe-sim`: the simulator as a command of the service's CLI (the entry point
group `reservation.commands` in pyproject.toml), so the service never imports it."""

from __future__ import annotations

import click
import uvicorn

from stripesim.app import create_sim_app
from stripesim.settings import SimSettings


@click.command("stripe-sim")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=12111, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--public-url",
    default=None,
    help="Where buyers' browsers reach the simulator, for the pay pages' URLs"
    " (default: http://HOST:PORT; behind a container's port mapping, the mapped address).",
)
@click.option("--webhook-url", default=None, help="Deliver signed events here.")
@click.option("--webhook-secret", default=None, help="Sign them with this whsec_ secret.")
@click.option(
    "--duplicate-share",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of events delivered twice.",
)
@click.option(
    "--delivery-delay",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Each delivery waits up to this many seconds (at random): late and out of order.",
)
@click.option(
    "--latency-ms",
    default=(0, 0),
    show_default=True,
    type=(click.IntRange(min=0), click.IntRange(min=0)),
    help="Every API answer waits between these many milliseconds, e.g. --latency-ms 200 600.",
)
@click.option(
    "--webhook-attempts",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="Deliveries of an event until one gets a 2xx (Stripe retries for three days).",
)
@click.option(
    "--webhook-retry-seconds",
    default=0.2,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Pause after the first failed delivery, doubled after each next one.",
)
@click.option("--seed", default=None, type=int, help="Seed of the chaos and latency draws.")
def stripe_sim(
    host: str,
    port: int,
    public_url: str | None,
    webhook_url: str | None,
    webhook_secret: str | None,
    duplicate_share: float,
    delivery_delay: float,
    latency_ms: tuple[int, int],
    webhook_attempts: int,
    webhook_retry_seconds: float,
    seed: int | None,
) -> None:
    """A local Stripe-compatible API for load tests (Stripe's own sandbox is rate limited)."""
    try:
        settings = SimSettings(
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            public_url=(public_url or f"http://{host}:{port}").rstrip("/"),
            duplicate_share=duplicate_share,
            delivery_delay_seconds=delivery_delay,
            latency_seconds=(latency_ms[0] / 1000, latency_ms[1] / 1000),
            webhook_attempts=webhook_attempts,
            webhook_retry_seconds=webhook_retry_seconds,
            chaos_seed=seed,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"Stripe simulator at http://{host}:{port} (STRIPE_API_BASE)")
    uvicorn.run(
        create_sim_app(settings),
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
