"""A script error (a Lua error Redis raises) is a bug, not an outage: 500 `internal_error`, the
script's words in the log and not in the answer; a Redis that cannot run the call stays 503."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import (
    ClusterDownError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)

from domain import errors
from reservation.lua.library import Scripts, is_script_error
from reservation.operations.background import every
from tests.api import Api
from tests.conftest import REDIS_URL

SECRET_DETAIL = "the broken script's own words"


@pytest.fixture
async def broken_function() -> AsyncIterator[str]:
    """The name of a function loaded in Redis that raises a Lua error, in a library of its own
    (deleted afterwards)."""
    name = f"test_broken_{uuid.uuid4().hex[:12]}"
    client = Redis.from_url(REDIS_URL)
    await client.function_load(
        f"#!lua name={name}\n"
        f"redis.register_function('{name}', function(keys, args) error(\"{SECRET_DETAIL}\") end)\n"
    )
    try:
        yield name
    finally:
        await client.function_delete(name)
        await client.aclose()


async def test_a_script_error_is_500_internal_error_logged_not_answered(
    api: Api,
    broken_function: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert (await api.put_product("tee", 3)).status_code == 200
    # The reserve route calls the broken function through the same path as its own script.
    monkeypatch.setitem(api.services.inventory.calls.scripts.functions, "reserve", broken_function)
    caplog.set_level(logging.ERROR, logger="reservation")

    answer = await api.reserve(("tee", 1))

    assert answer.status_code == 500
    assert answer.json() == {
        "error": "internal_error",
        "message": "the server failed to answer this request",
        "details": {},
    }
    assert "retry-after" not in answer.headers  # a bug: retrying does not help
    assert SECRET_DETAIL not in answer.text
    logged = [record for record in caplog.records if SECRET_DETAIL in record.getMessage()]
    assert len(logged) == 1
    record = logged[0]
    assert record.levelname == "ERROR"
    assert record.__dict__["outcome"] == "internal_error"
    assert record.__dict__["script"] == "reserve"
    assert record.__dict__["path"] == "/v1/reservations"
    assert record.exc_info is not None  # with the traceback, down to redis-py's ResponseError

    # Nothing was held, and the real script serves again once it is back.
    monkeypatch.undo()
    product = (await api.http.get("/v1/products/tee")).json()
    assert (product["reserved"], product["available"]) == (0, 3)
    assert (await api.reserve(("tee", 1))).status_code == 201


async def test_scripts_run_raises_script_failed_with_redis_words(broken_function: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        scripts = Scripts(client, {"broken": broken_function}, code="")
        with pytest.raises(errors.ScriptFailed) as raised:
            await scripts.run("broken", ["test_broken_key"], [])
    finally:
        await client.aclose()
    assert raised.value.status_code == 500
    assert raised.value.code == "internal_error"
    assert raised.value.script == "broken"
    assert SECRET_DETAIL in raised.value.script_message
    assert SECRET_DETAIL not in raised.value.message


def reply(code: str, words: str) -> ResponseError:
    """The error redis-py raises for Redis's reply `code words` when it maps no class to the
    code: since redis-py 8 the words without the code, which is `status_code`; before 8 the
    words with the code in front (the floors CI job runs the tests on redis-py 6)."""
    try:
        return ResponseError(words, status_code=code)  # type: ignore[call-arg,unused-ignore]
    except TypeError:
        return ResponseError(f"{code} {words}")


@pytest.mark.parametrize(
    ("error", "bug"),
    [
        (reply("ERR", "user_function:1: attempt to index a nil value script: f"), True),
        (reply("ERR", "value is not an integer or out of range script: f"), True),
        (reply("MYCODE", "an error reply the script returned"), True),
        (ResponseError("ERR Error compiling function"), True),  # redis-py before 8
        (reply("ERR", "Function not found"), False),  # loaded again, called once more
        (reply("BUSY", "Redis is busy running a script. You can only call SCRIPT KILL"), False),
        (ResponseError("BUSY Redis is busy running a script"), False),  # redis-py before 8
        (reply("MISCONF", "Redis is configured to save RDB snapshots, but cannot"), False),
        (reply("NOREPLICAS", "Not enough good replicas to write."), False),
        (OutOfMemoryError("command not allowed when used memory > 'maxmemory'"), False),
        (ReadOnlyError("You can't write against a read only replica."), False),
        (MasterDownError("Link with MASTER is down"), False),
        (ClusterDownError("The cluster is down"), False),
        (TryAgainError("Multiple keys request during rehashing of slot"), False),
    ],
)
def test_only_a_script_failing_is_a_bug_not_an_outage(error: ResponseError, bug: bool) -> None:
    assert is_script_error(error) is bug


async def test_a_background_step_hitting_a_script_error_logs_its_words_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done = asyncio.Event()

    async def step() -> None:
        done.set()
        raise errors.ScriptFailed("reclaim", f"ERR {SECRET_DETAIL}")

    caplog.set_level(logging.WARNING, logger="tests.script_errors")
    logger = logging.getLogger("tests.script_errors")
    loop = asyncio.create_task(every(0.001, step, logger=logger, what="sweep"))
    await asyncio.wait_for(done.wait(), 30)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    assert caplog.records, "the failed step was not logged"
    first = caplog.records[0]
    assert first.levelname == "ERROR"
    assert first.getMessage() == f"sweep failed: ERR {SECRET_DETAIL}"
    assert first.exc_info is not None
