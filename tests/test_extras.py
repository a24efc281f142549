"""The harness is an extra: the service runs without it, and says what to install when a
command or a store left unset needs it (pyproject.toml: the `demo` extra, the entry point group
`reservation.commands`)."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reservation import cli
from reservation.stores import embedded


def test_the_harness_adds_its_commands_through_entry_points() -> None:
    result = CliRunner().invoke(cli.main, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output
    assert "stripe-sim" in result.output
    assert "stripe-sim" in cli.main.list_commands(click.Context(cli.main))


def test_a_command_whose_package_is_missing_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = EntryPoint("demo", "no_such_harness.commands:demo", cli.PLUGIN_GROUP)
    monkeypatch.setattr(cli.CommandsWithPlugins, "_plugins", lambda self: {"demo": missing})
    result = CliRunner().invoke(cli.main, ["demo"])
    assert result.exit_code == 2
    assert 'pip install "stripe-reservation[demo]"' in result.output


def test_an_unknown_command_is_still_refused() -> None:
    result = CliRunner().invoke(cli.main, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_without_the_extra_the_embedded_redis_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fakeredis", None)  # `import fakeredis` raises ImportError
    with pytest.raises(RuntimeError, match=r"REDIS_URL is not set .*stripe-reservation\[demo\]"):
        embedded.embedded_redis()


def test_without_the_extra_the_embedded_mongodb_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(embedded, "nx_binary", lambda: None)
    with pytest.raises(RuntimeError, match=r"MONGODB_URI is not set .*stripe-reservation\[demo\]"):
        embedded.EmbeddedMongo(tmp_path).start()


def test_serve_without_redis_url_or_the_extra_is_refused_before_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "fakeredis", None)
    monkeypatch.delenv("REDIS_URL", raising=False)
    result = CliRunner().invoke(cli.main, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "REDIS_URL is not set" in result.output
    assert 'pip install "stripe-reservation[demo]"' in result.output
