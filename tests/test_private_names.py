"""Other libraries' private names this project uses, each for a measured or needed reason (see
the module that uses it). pyproject.toml caps those libraries' versions; this test names the
one that vanished or changed when a new version is let in."""

from __future__ import annotations

import importlib
import inspect

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
