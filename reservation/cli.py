"""The `reservation` command line (also `python -m reservation`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
import uvicorn
from redis.asyncio import Redis, RedisCluster

from reservation import __version__
from reservation.embedded import EmbeddedMongo
from reservation.errors import ReservationError
from reservation.inventory import DEFAULT_POOL, Inventory
from reservation.keys import DEFAULT_PREFIX, KeySpace
from reservation.scripts import RedisClient
from reservation.settings import Settings, SettingsError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
T = TypeVar("T")


def redis_from_env() -> RedisClient:
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    if os.environ.get("REDIS_CLUSTER") == "1":
        return RedisCluster.from_url(url)
    return Redis.from_url(url)


def with_inventory(action: Callable[[Inventory], Awaitable[T]]) -> T:
    """Run one action against the configured Redis; core errors become a clean CLI error."""

    async def run() -> T:
        client = redis_from_env()
        keys = KeySpace(os.environ.get("RESERVATION_KEY_PREFIX", DEFAULT_PREFIX))
        try:
            return await action(Inventory(client, keys=keys))
        finally:
            await client.aclose()

    try:
        return asyncio.run(run())
    except ReservationError as exc:
        raise click.UsageError(f"{exc.code}: {exc.message}") from exc


@click.group()
@click.version_option(__version__, prog_name="reservation")
def main() -> None:
    """Redis-first stock reservation service for Stripe Checkout."""


@main.command("set-stock")
@click.argument("sku")
@click.argument("total", type=click.IntRange(min=0))
@click.option("--pool", default=DEFAULT_POOL, show_default=True)
@click.option("--max-per-customer", type=click.IntRange(min=0), default=None)
def set_stock(sku: str, total: int, pool: str, max_per_customer: int | None) -> None:
    """Set the stock on hand of SKU in Redis (REDIS_URL)."""
    level = with_inventory(
        lambda inventory: inventory.set_stock(
            sku, total, pool=pool, max_per_customer=max_per_customer
        )
    )
    click.echo(
        f"{level.sku}: total={level.total} reserved={level.reserved} "
        f"sold={level.sold} available={level.available}"
    )


@main.command()
@click.option("--pool", default=DEFAULT_POOL, show_default=True)
def stock(pool: str) -> None:
    """Print the live counters of every SKU of a pool."""
    levels = with_inventory(lambda inventory: inventory.stock(pool=pool))
    click.echo(f"{'sku':<24} {'total':>8} {'reserved':>8} {'sold':>8} {'available':>9}")
    for level in levels:
        click.echo(
            f"{level.sku:<24} {level.total:>8} {level.reserved:>8} "
            f"{level.sold:>8} {level.available:>9}"
        )


@main.command("reconcile")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
def reconcile_command(dry_run: bool) -> None:
    """Rebuild Redis counters from MongoDB (REDIS_URL, MONGODB_URI) and print the diff."""
    # Imported here so the Redis-only commands never load the MongoDB driver.
    from persistence.mongo import connect
    from persistence.orders import OrderRepository
    from persistence.products import ProductRepository
    from reservation.reconcile import format_diff, reconcile, sold_statuses

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    if settings.redis_url is None:
        raise click.UsageError("REDIS_URL is required: reconcile rebuilds that Redis")
    mongodb_uri = settings.mongodb_uri
    if mongodb_uri is None:
        raise click.UsageError("MONGODB_URI is required: reconcile reads that MongoDB")

    async def run(inventory: Inventory) -> str:
        client, db = connect(mongodb_uri, settings.mongodb_database)
        try:
            diffs = await reconcile(
                inventory,
                ProductRepository(db),
                OrderRepository(db),
                dry_run=dry_run,
                sold_statuses=sold_statuses(settings),
            )
        finally:
            await client.close()
        return format_diff(diffs)

    click.echo(("dry run: nothing written\n" if dry_run else "") + with_inventory(run))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int) -> None:
    """Run the HTTP API under uvicorn against the configured Redis and MongoDB."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    if settings.redis_url is None and workers > 1:
        raise click.UsageError(
            "set REDIS_URL to run more than one worker: the embedded Redis lives in one process"
        )
    embedded = None
    if settings.mongodb_uri is None:
        # Start it here, once, so every worker shares it.
        embedded = EmbeddedMongo(Path(settings.data_dir))
        os.environ["MONGODB_URI"] = embedded.start()
        click.echo(f"embedded MongoDB (nx-27017) at {embedded.uri}, data in {settings.data_dir}")
    try:
        uvicorn.run(
            "reservation.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_level="warning",
        )
    finally:
        if embedded is not None:
            embedded.stop()


@main.command()
def sweep() -> None:
    """One sweeper pass: reclaim lapsed holds, expire the sessions of lapsed reservations."""
    from reservation.app import create_app
    from reservation.sweeper import sweep as sweep_once

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    if settings.redis_url is None or settings.mongodb_uri is None:
        raise click.UsageError("REDIS_URL and MONGODB_URI are required: sweep works on those")
    app = create_app(settings)

    async def run() -> str:
        async with app.router.lifespan_context(app):
            report = await sweep_once(app.state.services)
        return (
            f"{report.reclaimed_holds} holds reclaimed, {report.expired_sessions} sessions expired"
        )

    try:
        click.echo(asyncio.run(run()))
    except ReservationError as exc:
        raise click.UsageError(f"{exc.code}: {exc.message}") from exc


@main.command("stripe-sim")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=12111, show_default=True, type=click.IntRange(1, 65535))
@click.option("--webhook-url", default=None, help="Deliver signed events here.")
@click.option("--webhook-secret", default=None, help="Sign them with this whsec_ secret.")
def stripe_sim(host: str, port: int, webhook_url: str | None, webhook_secret: str | None) -> None:
    """A local Stripe-compatible API for load tests (Stripe's own sandbox is rate limited)."""
    from reservation.stripesim import SimSettings, create_sim_app

    try:
        settings = SimSettings(
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            public_url=f"http://{host}:{port}",
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
