"""open_services: everything one process runs on, opened from Settings and closed again."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import psutil
import pytest
from redis.asyncio import Redis

from reservation.core.keys import KeySpace
from reservation.services import RECOVERY_TASK, SWEEPER_TASK, open_services
from reservation.settings import Settings
from tests.conftest import REDIS_URL


def _running_on(path: Path) -> list[psutil.Process]:
    """The children of this process started on `path` (the embedded MongoDB)."""
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if any(str(path) in part for part in child.cmdline())
    ]


def _named(name: str) -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == name]


@pytest.mark.parametrize("ending", ["normally", "by an error"])
async def test_everything_opened_is_closed_the_embedded_mongodb_last(
    tmp_path: Path, keyspace: KeySpace, ending: str
) -> None:
    settings = Settings(
        redis_url=REDIS_URL,
        mongodb_uri=None,  # the embedded nx-27017, in tmp_path
        mongodb_database=f"svc_{uuid.uuid4().hex[:10]}",
        data_dir=str(tmp_path),
        key_prefix=keyspace.prefix,
        sweep_seconds=0.05,
    )
    with pytest.raises(RuntimeError) if ending == "by an error" else _nothing():
        async with open_services(settings) as services:
            (mongo,) = _running_on(tmp_path)
            assert (await services.db.command("ping"))["ok"] == 1
            assert await services.redis.ping()
            (sweeper,) = _named(SWEEPER_TASK)
            (recovery,) = _named(RECOVERY_TASK)
            await asyncio.sleep(0.2)  # a few passes of the background sweeper
            assert not sweeper.done()
            assert not recovery.done()
            if ending == "by an error":
                raise RuntimeError("a request handler's bug")
    # Both stopped before the clients they use were closed.
    assert sweeper.cancelled()
    assert recovery.cancelled()
    assert _named(SWEEPER_TASK) == _named(RECOVERY_TASK) == []
    assert psutil.wait_procs([mongo], timeout=15)[1] == []
    assert _running_on(tmp_path) == []
    client = Redis.from_url(REDIS_URL)
    # Nothing but the marker of counters built beside MongoDB (here: of an empty catalog).
    left = [key async for key in client.scan_iter(match=keyspace.pattern())]
    assert left == [keyspace.built.encode()]
    await client.delete(*left)
    await client.aclose()


async def test_a_settings_with_mongodb_uri_starts_no_embedded_server(
    tmp_path: Path, mongodb_uri: str, keyspace: KeySpace
) -> None:
    settings = Settings(
        redis_url=REDIS_URL,
        mongodb_uri=mongodb_uri,
        mongodb_database=f"svc_{uuid.uuid4().hex[:10]}",
        data_dir=str(tmp_path),
        key_prefix=keyspace.prefix,
        sweep_seconds=0,
    )
    async with open_services(settings) as services:
        assert _running_on(tmp_path) == []
        assert _named(SWEEPER_TASK) == []  # no sweeper when it is off
        assert len(_named(RECOVERY_TASK)) == 1
        assert await services.products.list() == []
        await services.mongo.drop_database(settings.mongodb_database)
        await services.redis.delete(keyspace.built)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
