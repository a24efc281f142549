"""The `reservation` command line (also `python -m reservation`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from uvicorn.config import LOGGING_CONFIG

from domain.errors import ReservationError
from domain.rules import DEFAULT_POOL
from reservation import __version__, logs
from reservation.core.inventory import Inventory
from reservation.env_readers import SettingsError
from reservation.server.serving import StopSignals, run_uvicorn
from reservation.server.worker_metrics import shared_metrics
from reservation.settings import Settings
from reservation.settings import help_text as variables_help
from reservation.stores.embedded import EmbeddedMongo, NotInstalled, require_embedded_redis

if TYPE_CHECKING:
    from domain.products import StockedProduct
    from reservation.services import Services

T = TypeVar("T")

NO_REDIS_URL = (
    "REDIS_URL is not set. Without it `reservation serve` uses an embedded Redis that lives "
    "inside the serve process, which no other command can reach: use the HTTP API "
    "(GET /v1/products, PUT /v1/products/{sku}) or set REDIS_URL to the Redis serve uses."
)
NO_MONGODB_URI = (
    "MONGODB_URI is not set. set-stock writes through the catalog in MongoDB, and without it "
    "`reservation serve` runs an embedded MongoDB of its own for as long as it runs: use the "
    "HTTP API (PUT /v1/products/{sku}) or set MONGODB_URI to the MongoDB serve uses."
)


def load_settings() -> Settings:
    try:
        settings = Settings.from_env()
        settings.check()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    return settings


def run_once(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's work; the core's errors become a clean CLI error."""
    try:
        return asyncio.run(work)
    except ReservationError as exc:
        raise click.UsageError(f"{exc.code}: {exc.message}") from exc


def with_inventory(settings: Settings, action: Callable[[Inventory], Awaitable[T]]) -> T:
    """Run one action against the configured Redis alone."""
    # Imported here so `--help` and the refusals never load the service's dependencies.
    from reservation.services import open_inventory

    async def run() -> T:
        async with open_inventory(settings) as inventory:
            return await action(inventory)

    return run_once(run())


def with_services(settings: Settings, action: Callable[[Services], Awaitable[T]]) -> T:
    """Open the service as `serve` does (reservation/services.py), run one action, close it.

    A command is not the service: it starts no background sweeper, rebuild check or outbox
    relay, and restores nothing at start (reconcile and sweep do that work themselves, when
    asked).
    """
    from reservation.services import open_services

    once = replace(
        settings,
        sweep_seconds=0,
        reconcile_on_start=False,
        rebuild_check_seconds=0,
        outbox_interval_seconds=0,
    )

    async def run() -> T:
        async with open_services(once) as services:
            return await action(services)

    return run_once(run())


PLUGIN_GROUP = "reservation.commands"


class CommandsWithPlugins(click.Group):
    """The service's commands, and those other packages add through the entry point group
    `reservation.commands` (the harness adds `demo` and `stripe-sim`): loaded only when named
    or listed, so the service never imports them and runs without them."""

    def _plugins(self) -> dict[str, EntryPoint]:
        return {point.name: point for point in entry_points(group=PLUGIN_GROUP)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        point = self._plugins().get(cmd_name)
        if point is None:
            return None
        try:
            loaded = point.load()
        except ImportError as exc:
            raise click.UsageError(
                f'`{cmd_name}` needs the demo extra: pip install "stripe-reservation[demo]" ({exc})'
            ) from exc
        return loaded if isinstance(loaded, click.Command) else None


@click.group(cls=CommandsWithPlugins)
@click.version_option(__version__, prog_name="reservation")
def main() -> None:
    """Redis-first stock reservation service for Stripe Checkout."""


@main.command("set-stock")
@click.argument("sku")
@click.argument("total", type=click.IntRange(min=0))
@click.option(
    "--pool",
    default=None,
    help="Refuse unless the product is in this pool (a SKU never changes pool).",
)
@click.option(
    "--max-per-customer",
    type=click.IntRange(min=0),
    default=None,
    help="Units one customer may hold or buy; 0 removes the limit. Omitted: kept as it is.",
)
def set_stock(sku: str, total: int, pool: str | None, max_per_customer: int | None) -> None:
    """Set the stock on hand of a catalog product: MongoDB, then Redis, as the HTTP PUT does.

    The product must exist (create it with PUT /v1/products/{sku}); its name, price, currency
    and pool are kept. Counters Redis lost are rebuilt from MongoDB first. Needs REDIS_URL and
    MONGODB_URI.
    """
    import msgspec

    from domain.errors import InvalidRequest
    from domain.rules import check_name
    from reservation.api.products import product_spec
    from reservation.api.schemas import ProductIn

    settings = load_settings()
    if settings.redis_url is None or settings.mongodb_uri is None:
        hints = ((NO_REDIS_URL, settings.redis_url), (NO_MONGODB_URI, settings.mongodb_uri))
        raise click.UsageError("\n".join(hint for hint, value in hints if value is None))

    async def run(services: Services) -> StockedProduct:
        check_name(sku, "sku")
        product = await services.products.get(sku)
        if product is None:
            raise click.UsageError(
                f"unknown SKU {sku}: set-stock changes the stock of a catalog product; "
                f"create it first with PUT /v1/products/{sku}"
            )
        if pool is not None and pool != product.pool:
            raise click.UsageError(
                f"{sku} is in pool {product.pool}, not {pool}: a SKU never changes pool"
            )
        limit = product.max_per_customer  # omitted: kept; 0: no limit
        if max_per_customer is not None:
            limit = max_per_customer or None
        fields = {
            "name": product.name,
            "price": product.price,
            "currency": product.currency,
            "stock": total,
            "pool": product.pool,
            "max_per_customer": limit,
        }
        try:
            # The same checks as a PUT body, so the CLI cannot store what the API refuses.
            body = msgspec.convert(fields, ProductIn)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"invalid product: {exc}") from None
        # Counters Redis lost are rebuilt from MongoDB first (what was sold stays sold): the
        # new total never starts again from nothing sold.
        await services.recovery.ensure()
        return await services.catalog.put(sku, product_spec(body))

    view = with_services(settings, run)
    click.echo(
        f"{view.sku}: total={view.spec.stock} reserved={view.reserved} "
        f"sold={view.sold} available={view.available}"
    )


@main.command()
@click.option("--pool", default=DEFAULT_POOL, show_default=True)
def stock(pool: str) -> None:
    """Print the live counters of every SKU of a pool (REDIS_URL)."""
    settings = load_settings()
    if settings.redis_url is None:
        raise click.UsageError(NO_REDIS_URL)
    levels = with_inventory(settings, lambda inventory: inventory.stock.levels(pool=pool))
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
    from reservation.operations.reconcile import format_diff, reconcile, sold_statuses

    settings = load_settings()
    if settings.redis_url is None:
        raise click.UsageError("REDIS_URL is required: reconcile rebuilds that Redis")
    if settings.mongodb_uri is None:
        raise click.UsageError("MONGODB_URI is required: reconcile reads that MongoDB")

    async def run(services: Services) -> str:
        diffs = await reconcile(
            services.inventory,
            services.products,
            services.orders,
            dry_run=dry_run,
            sold_statuses=sold_statuses(settings),
            waitlists=services.recovery.waitlists,
        )
        return format_diff(diffs)

    click.echo(("dry run: nothing written\n" if dry_run else "") + with_services(settings, run))


@main.command(epilog=variables_help())
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int) -> None:
    """Run the HTTP API under uvicorn against the configured Redis and MongoDB."""
    settings = load_settings()
    if settings.redis_url is None and workers > 1:
        raise click.UsageError(
            "set REDIS_URL to run more than one worker: the embedded Redis lives in one process"
        )
    try:
        if settings.redis_url is None:
            require_embedded_redis()
        serve_until_stopped(settings, host, port, workers)
    except NotInstalled as exc:
        raise click.UsageError(str(exc)) from None


def serve_until_stopped(settings: Settings, host: str, port: int, workers: int) -> None:
    """Start the embedded MongoDB when MONGODB_URI is unset, then uvicorn, until a signal."""
    stop = StopSignals()
    if settings.redis_url is None:
        click.echo(
            "embedded Redis (fakeredis) inside this process: nothing is kept on disk, "
            "and other commands cannot reach it"
        )
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    with contextlib.ExitStack() as stack:
        if settings.mongodb_uri is None:
            # Started here, once, so every worker shares it (the workers read MONGODB_URI).
            # Its stop is registered before it starts: SIGTERM or Ctrl+C at any point from
            # here on leaves no nx-27017 behind (a signal during its start waits for the
            # start, up to 20 s, then stops it).
            embedded = EmbeddedMongo(Path(settings.data_dir))
            stack.callback(embedded.stop)
            os.environ["MONGODB_URI"] = embedded.start()
            click.echo(
                f"embedded MongoDB (nx-27017) at {embedded.uri}, data in {settings.data_dir}"
            )
        if stop.received is not None:
            return
        # Several workers: one directory of metrics for all, fresh now, removed at exit.
        stack.enter_context(shared_metrics(workers))
        run_uvicorn(
            host,
            port,
            workers,
            lambda: click.echo(f"reservation: ready at {url}"),
            stop,
            settings,
            # RESERVATION_LOG_FORMAT: the service's lines, text or JSON (reservation/logs.py).
            logs.log_config(settings, LOGGING_CONFIG),
        )


@main.command()
def sweep() -> None:
    """One sweeper pass: reclaim lapsed holds, expire the sessions of lapsed reservations."""
    from reservation.operations.sweeper import sweep as sweep_once

    settings = load_settings()
    if settings.redis_url is None or settings.mongodb_uri is None:
        raise click.UsageError("REDIS_URL and MONGODB_URI are required: sweep works on those")
    report = with_services(settings, sweep_once)
    click.echo(
        f"{report.reclaimed_holds} holds reclaimed, {report.expired_sessions} sessions expired,"
        f" {report.recovered_sessions} unrecorded sessions recovered,"
        f" {report.refunds_retried} refused refunds tried again"
    )
