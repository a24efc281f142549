"""The shape docs/design.md promises a reader: no module of the service or of its harness over
400 lines, no function over 60, and every script's reply decoded beside its Lua file."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("reservation", "persistence", "domain", "harness", "stripesim", "loadtests")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for path in modules()
        if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_over_60_lines() -> None:
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                count = node.end_lineno - node.lineno + 1
                if count > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = count
    assert long == {}


def test_every_script_reply_is_decoded_beside_its_lua_file() -> None:
    """A reply's shape is written once: lua/<script>.py decodes lua/<script>.lua's reply (and
    lua/_pool.py what _pool.lua builds for several scripts); the core never indexes a reply."""
    lua = ROOT / "reservation" / "lua"
    undecoded = [
        path.name
        for path in sorted(lua.glob("*.lua"))
        if not (lua / f"{path.stem}.py").exists()
        or (path.stem != "_pool" and "def decode(" not in (lua / f"{path.stem}.py").read_text())
    ]
    assert undecoded == []
    indexed = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "reservation" / "core").glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "reply[" in line
    ]
    assert indexed == []
