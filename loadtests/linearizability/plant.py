"""Bugs planted in a copy of the tree, one at a time, for the checker to find: a check that
passes the real service proves little until it fails a service that is wrong in the ways a
change could make it wrong.

- (a) `split-reserve`: the reserve reads availability in one script (the product view) and
  holds in another, whose own check of the units is gone: two buyers may both see the last
  unit free and both hold it.
- (b) `soldout-forever`: the sold-out memory never lapses: a process that heard "0 left" keeps
  refusing after units came back (until it releases some itself).
- (c) `release-twice`: a release gives the hold's units back twice.

Each bug is a few textual patches; a patch whose text is not found exactly once stops the
planting (the code moved: the patch must follow it), never a silent run of the clean code.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from loadtests.sale_stack import ROOT

# The tree's top-level packages the stack runs (the service, its domain and stores, the
# Stripe simulator, the harness): copied whole, the rest (tests, docs, .venv) is not needed.
PACKAGES = ("reservation", "domain", "persistence", "stripesim", "harness")


class PlantFailed(RuntimeError):
    """A patch did not apply: the code it changes has moved."""


@dataclass(frozen=True)
class Patch:
    """Replace `old` (found exactly once in `path`) with `new`."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Bug:
    letter: str
    name: str
    description: str
    patches: tuple[Patch, ...]


_RESERVE_CALL = (
    '        reply = await self.calls.run(pool, "reserve", args, reservation_id, extra_keys=room)\n'
)
# (a): the units checked by a read of their own before the reserve script runs (a fresh
# reservation only: a retried key still finds its reservation, as the real service does).
_SPLIT_READ = (
    "        if fresh:  # PLANTED BUG (a): availability read apart from the hold\n"
    "            for line in lines:\n"
    '                view = await self.calls.run(pool, "product", [line.sku, pool])\n'
    '                free = int(json.loads(view)["available"]) if view else 0\n'
    "                if line.quantity > free:\n"
    "                    refused = OutOfStock(line.sku, line.quantity, free)\n"
    "                    self.sold_out.remember(refused)\n"
    "                    return refused\n"
) + _RESERVE_CALL

BUGS = {
    bug.letter: bug
    for bug in (
        Bug(
            "a",
            "split-reserve",
            "the reserve reads availability in one script and writes the hold in another",
            (
                Patch(
                    "reservation/core/holds.py",
                    "from __future__ import annotations\n",
                    "from __future__ import annotations\n\nimport json\n",
                ),
                Patch("reservation/core/holds.py", _RESERVE_CALL, _SPLIT_READ),
                Patch(
                    "reservation/lua/reserve.lua",
                    "    if qty > available then\n",
                    "    if false and qty > available then  -- PLANTED BUG (a)\n",
                ),
            ),
        ),
        Bug(
            "b",
            "soldout-forever",
            "the sold-out memory never lapses",
            (
                Patch(
                    "reservation/core/soldout.py",
                    "            if lapses > now:\n",
                    "            if lapses > now or True:  # PLANTED BUG (b)\n",
                ),
            ),
        ),
        Bug(
            "c",
            "release-twice",
            "a release gives the units back twice",
            (
                Patch(
                    "reservation/lua/release.lua",
                    "drop_hold(id, r, true, false, now, 'left')\n",
                    "drop_hold(id, r, true, false, now, 'left')\n"
                    "local twice = {}  -- PLANTED BUG (c): the units back a second time\n"
                    "add_counts(twice, nil, parse_items(r.items), 'reserved', '', -1)\n"
                    "add_to_hash(stock_key, twice, false)\n",
                ),
            ),
        ),
    )
}


def copy_tree(into: Path, source: Path = ROOT) -> Path:
    """The packages the stack runs, copied from `source` into `into` (created)."""
    into.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        shutil.copytree(
            source / package,
            into / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    return into


def apply(bug: Bug, tree: Path) -> None:
    """Apply the bug's patches to the copy at `tree`; PlantFailed if one does not apply."""
    for patch in bug.patches:
        path = tree / patch.path
        text = path.read_text("utf-8")
        found = text.count(patch.old)
        if found != 1:
            raise PlantFailed(
                f"bug ({bug.letter}) {bug.name}: the text to patch in {patch.path} was found"
                f" {found} times, not once - the code moved, make the patch follow it:\n"
                f"{patch.old}"
            )
        path.write_text(text.replace(patch.old, patch.new), "utf-8")


def planted(bug: Bug, into: Path, source: Path = ROOT) -> Path:
    """A copy of the tree with `bug` planted: its root, to run the stack from."""
    tree = copy_tree(into, source)
    apply(bug, tree)
    return tree
