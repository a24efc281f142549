"""Other libraries' private names this project uses, each for a measured or needed reason (see
the module that uses it). pyproject.toml caps those libraries' versions; this test names the
one that vanished or changed when a new version is let in."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# (module, attribute path, parameters it must take, or None for a name only)
PRIVATE_NAMES = [
    # reservation/server/protocol.py: where uvicorn starts a request (at once, or a pipelined one
    # in its turn); overridden to admit it against the process's and the client's bounds.
    (
        "uvicorn.protocols.http.httptools_impl",
        "HttpToolsProtocol._start_asgi_task",
        ["self", "cycle", "app"],
    ),
    # reservation/server/: the ASGI application type of that method's signature.
    ("uvicorn._types", "ASGI3Application", None),
    # reservation/server/deadlines.py: the status lines and the closing header uvicorn writes,
    # a cycle's type and the server's state (the slow-client deadlines answer as uvicorn does).
    ("uvicorn.protocols.http.httptools_impl", "STATUS_LINE", None),
    ("uvicorn.protocols.http.httptools_impl", "RequestResponseCycle", None),
    ("uvicorn.protocols.http.flow_control", "CLOSE_HEADER", None),
    ("uvicorn.server", "ServerState", None),
    ("uvicorn.config", "STARTUP_FAILURE", None),
    # reservation/server/serving.py: the supervisor's per-tick check, extended.
    ("uvicorn.supervisors.multiprocess", "Multiprocess.keep_subprocess_alive", ["self"]),
    # reservation/stores/cluster.py: where redis-py's cluster client finds a command's slot.
    ("redis.asyncio.cluster", "RedisCluster._determine_slot", ["self", "command", "args"]),
]


@pytest.mark.parametrize(("module", "path", "parameters"), PRIVATE_NAMES)
def test_every_private_name_used_is_still_there(
    module: str, path: str, parameters: list[str] | None
) -> None:
    found: object = importlib.import_module(module)
    for part in path.split("."):
        assert hasattr(found, part), f"{module}.{path} is gone: {part} not found"
        found = getattr(found, part)
    if parameters is not None:
        assert callable(found)
        assert list(inspect.signature(found).parameters) == parameters, f"{module}.{path}"


def test_the_protocol_still_starts_requests_through_it() -> None:
    """uvicorn calls the method from its request handling (else the override admits nothing)."""
    source = inspect.getsource(HttpToolsProtocol)
    assert source.count("self._start_asgi_task(") >= 2  # a request at once, a pipelined one


def test_locust_still_filters_tasks_by_tags() -> None:
    """loadtests/locustfile.py calls Environment._filter_tasks_by_tags(); read from locust's
    source, since importing locust in pytest patches the process (gevent)."""
    spec = importlib.util.find_spec("locust")  # found, not imported (locust.env would be)
    assert spec is not None
    assert spec.origin is not None
    source = (Path(spec.origin).parent / "env.py").read_text(encoding="utf-8")
    assert "def _filter_tasks_by_tags(self)" in source, "locust's task filter is gone"
