"""The verifier's look at the bots of a sale (loadtests/locustfile.py's `bots` scenario): every
attempt refused, nothing sold to a bot's claimed id.

The bots name their requests `bot: <what they tried>`; an attempt the service let through is
reported as `bot: <what>: accepted` (a 2xx answer: a hold made, a reservation read, released or
checked out for somebody else), one refused in another way than promised as
`bot: <what>: not refused (<status> <error>)`. Locust's stats CSV holds both; the verifier reads
it (`--locust-stats`) and Stripe's sessions, whose metadata names the customer of each checkout.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOT = "bot: "
ACCEPTED = ": accepted"
NOT_REFUSED = ": not refused"
# Every id a bot invents or owns starts so (the borrowed ones are the honest buyers').
BOT_ID_PREFIX = "bot-"


@dataclass(frozen=True, slots=True)
class BotRow:
    """Locust's count of one bot request name."""

    name: str
    requests: int


def bot_rows(stats: Path, prefix: str = BOT) -> list[BotRow]:
    """The bots' rows of Locust's stats CSV (none when Locust wrote none); with `prefix`, the
    rows whose name starts with it instead."""
    if not stats.exists():
        return []
    with stats.open() as handle:
        return [
            BotRow(row["Name"], int(row["Request Count"]))
            for row in csv.DictReader(handle)
            if row["Name"].startswith(prefix)
        ]


def bot_findings(rows: Sequence[BotRow], sessions: Sequence[dict[str, Any]]) -> list[str]:
    """What the bots got that they must not have: one line each (none: every attempt refused)."""
    found = [
        f"{row.name}: {row.requests} attempt(s)"
        for row in rows
        if row.requests and (row.name.endswith(ACCEPTED) or NOT_REFUSED in row.name)
    ]
    for session in sessions:
        customer = (session.get("metadata") or {}).get("customer_id") or ""
        if customer.startswith(BOT_ID_PREFIX):
            found.append(f"session {session['id']} was made for {customer}")
    return found


def attempts(rows: Sequence[BotRow]) -> int:
    """How many attempts the bots made, refused or not."""
    return sum(row.requests for row in rows)
