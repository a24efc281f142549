"""The docs name files a reader will open (docs/design.md's map and its two paths of 12 files):
every path they give must exist, so a move cannot leave the map pointing at nothing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGES = "reservation|persistence|domain|harness|stripesim|loadtests|tests"
PATH = re.compile(rf"`((?:{PACKAGES})/[\w/.-]*\.(?:py|lua|html|js|css))`")


def test_every_file_the_docs_name_exists() -> None:
    named = {(doc.name, path) for doc in DOCS for path in PATH.findall(doc.read_text())}
    assert len(named) > 40  # the map and the two paths at least
    assert sorted(named_path for named_path in named if not (ROOT / named_path[1]).exists()) == []
