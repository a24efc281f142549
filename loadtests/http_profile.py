"""Where a server's time goes under the HTTP benchmark's load: py-spy on a fresh 1-worker
server while the load generator drives one case, and the report's section on it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from loadtests.http_cases import CASES, Case, Load
from loadtests.http_measure import WARMUP_SECONDS, Run
from loadtests.pyspy import Profile, py_spy, record, summarize

PROFILE_SECONDS = 5
PROFILE_RATE = 200  # samples per second
PROFILED = ("reserve", "reserve_token", "get_product", "floor")


@dataclass(frozen=True, slots=True)
class CaseProfile:
    """A case's py-spy profile, and the load the server answered while it was recorded."""

    profile: Profile
    load: Load


async def profile_case(run: Run, case: Case) -> CaseProfile | None:
    """py-spy --native on a fresh 1-worker server while wrk drives `case`."""
    binary = py_spy()
    if binary is None:
        run.notes.append("py-spy is not installed: no profile (pip install py-spy)")
        return None
    path = run.workdir / f"{case.name}-profile.txt"
    async with run.serving(case.server) as server:
        url = server.url + case.path
        await run.driver.load(url, case, WARMUP_SECONDS)
        driving = asyncio.create_task(run.driver.load(url, case, PROFILE_SECONDS + 3))
        await asyncio.sleep(1.0)
        failed = await asyncio.to_thread(
            record, binary, server.process.pid, PROFILE_SECONDS, PROFILE_RATE, path
        )
        load = await driving
    if failed is not None:
        run.notes.append(f"py-spy failed on {case.name}: {failed}")
        return None
    return CaseProfile(summarize(case.name, path.read_text()), load)


async def profiles(run: Run) -> list[CaseProfile]:
    """The reserve and product cases, and the floor beside them for comparison."""
    found = [await profile_case(run, case) for case in CASES if case.name in PROFILED]
    return [one for one in found if one is not None]


def percent(count: int, total: int) -> str:
    return f"{100 * count / total:.1f} %" if total else "n/a"


def share_table(
    title: str, found: Sequence[CaseProfile], counts: list[dict[str, int]]
) -> list[str]:
    """One row per label, one column per profile: share of that profile's samples."""
    labels = list(dict.fromkeys(label for count in counts for label in count))
    header = f"| {title} | " + " | ".join(f"{one.profile.name} (% of samples)" for one in found)
    header += " |"
    lines = [header, "| --- |" + " --- |" * len(found)]
    for label in labels:
        pairs = zip(found, counts, strict=True)
        cells = [percent(count.get(label, 0), one.profile.samples) for one, count in pairs]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def profile_lines(found: Sequence[CaseProfile]) -> list[str]:
    if not found:
        return ["No profile: every target was met, or py-spy was unavailable (see notes)."]
    under = ", ".join(
        f"{one.profile.name} {one.load.per_second:,.0f} req/s ({one.profile.samples:,} samples)"
        for one in found
    )
    reserve = found[0].profile
    return [
        f"`py-spy record --native --rate {PROFILE_RATE}` for {PROFILE_SECONDS} s on a fresh"
        " 1-worker server while wrk drove the case with the same load. py-spy pauses the"
        " process for each sample, so the servers ran slower under it:"
        f" {under}. Shares are of samples in which the server was running (not idle).",
        "",
        "Self time by owner: each sample goes to the first frame, from the leaf up, that"
        " belongs to a package; CPython runtime frames (malloc, refcounts, the eval loop) are"
        " charged to the Python code that ran them, syscalls and the garbage collector are"
        " their own rows.",
        "",
        *share_table("group", found, [one.profile.grouped() for one in found]),
        "",
        "In detail:",
        "",
        *share_table("owner", found, [dict(one.profile.owners) for one in found]),
        "",
        "Inclusive: samples with the function anywhere on the stack.",
        "",
        *share_table("frame", found, [dict(one.profile.inclusive) for one in found]),
        "",
        f"Hottest leaf frames of {reserve.name}:",
        "",
        "| leaf frame | share |",
        "| --- | --- |",
        *(f"| `{leaf}` | {percent(n, reserve.samples)} |" for leaf, n in reserve.leaves),
    ]
