"""`reservation demo`: a command the harness adds to the service's CLI (the entry point group
`reservation.commands` in pyproject.toml), so the service never imports the harness."""

from __future__ import annotations

import click

from harness.demo import Demo, DemoError
from reservation.cli import load_settings
from reservation.server.serving import StopSignals


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address the storefront and the Stripe simulator listen on.",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def demo(host: str, port: int) -> None:
    """The whole shop on this machine: storefront, operations page, Stripe simulator.

    Redis: REDIS_URL, else a redis-server started here (when the binary is on PATH), else
    the embedded fakeredis. MongoDB: MONGODB_URI, else nx-27017 with its data in
    RESERVATION_DATA_DIR (default .reservation), so orders survive a restart. Payments always
    go to the simulator (its pay page has Pay, Decline, Pay later and Cancel). Visitors type a
    name in the storefront and a small shop backend (demo only) hands them a customer token
    signed with RESERVATION_CUSTOMER_TOKEN_SECRET (else a fresh one). Products are
    seeded when the catalog is empty; holds last 2 minutes unless RESERVATION_HOLD_SECONDS
    says otherwise. Ctrl-C or SIGTERM stops everything it started.
    """
    settings = load_settings()
    stop = StopSignals()
    try:
        Demo(settings, host, port, click.echo).run(lambda: stop.received is not None)
    except DemoError as exc:
        raise click.ClickException(str(exc)) from exc
