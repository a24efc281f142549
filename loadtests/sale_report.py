"""The flash sale's report: what the sale made (orders, refunds, events), how fast webhooks
wrote paid orders, Locust's chart over time, and flash-sale.md."""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path
from typing import Any

import httpx

from loadtests.sale_locust import NameRow
from loadtests.sale_stack import STRIPE_KEY, Stack

CPU_LABELS = (
    ("locust", "Locust"),
    ("service", "the service (all its workers)"),
    ("run", "this run: the stores, simulator, service and Locust"),
    ("machine", "the machine (2 cores: 200)"),
)


def sale_totals(stack: Stack) -> dict[str, int]:
    """Orders by status and the refunds made, read from the service and the simulator."""
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    totals: dict[str, int] = {}
    with httpx.Client(base_url=stack.service_url, headers=headers, timeout=30) as http:
        for status in ("paid", "awaiting_payment", "payment_failed", "refunded_oversold"):
            found = http.get("/v1/orders", params={"status": status, "limit": 1000}).json()
            totals[f"orders {status}"] = len(found["data"])
        products = http.get("/v1/products").json()["data"]
    totals["units sold"] = sum(product["sold"] for product in products)
    totals["units on sale"] = sum(product["stock"] for product in products)
    with httpx.Client(base_url=stack.sim_url, timeout=30) as http:
        made = {"method": "POST", "path": "/v1/refunds"}
        totals["refund requests"] = len(http.get("/_sim/requests", params=made).json()["data"])
        stripe_auth = {"Authorization": f"Bearer {STRIPE_KEY}"}
        totals["refunds made"] = len(http.get("/v1/refunds", headers=stripe_auth).json()["data"])
        events = http.get("/_sim/events").json()["data"]
        deliveries = http.get("/_sim/deliveries").json()["data"]
    totals["events"] = len(events)
    totals["deliveries"] = len(deliveries)
    return totals


def webhook_rates(stack: Stack) -> dict[str, float]:
    """Paid orders the webhooks wrote into MongoDB (peak per second, over their span), and the
    floor: plain inserts into the same MongoDB from one process, one at a time, for 3 s."""
    from datetime import datetime

    import pymongo

    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    with httpx.Client(base_url=stack.service_url, headers=headers, timeout=30) as http:
        paid = http.get("/v1/orders", params={"status": "paid", "limit": 1000}).json()["data"]
    times = sorted(datetime.fromisoformat(order["created_at"]).timestamp() for order in paid)
    peak = max((sum(1 for t in times if start <= t < start + 1) for start in times), default=0)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(stack.env["MONGODB_URI"])
    try:
        scratch = client[stack.env["MONGODB_DATABASE"] + "_floor"]["inserts"]
        inserted, started = 0, time.perf_counter()
        while time.perf_counter() - started < 3.0:
            scratch.insert_one({"n": inserted, "payload": "x" * 200})
            inserted += 1
        floor = inserted / (time.perf_counter() - started)
        client.drop_database(scratch.database.name)
    finally:
        client.close()
    return {
        "paid orders written, peak per second": float(peak),
        "paid orders written, per second over their span": len(times) / span if span else 0.0,
        "floor: plain inserts per second, one process": floor,
    }


def chart(report_dir: Path) -> Path | None:
    """Requests/s and p50/p99 over time per request name, from Locust's history CSV."""
    history = report_dir / "flash-sale_stats_history.csv"
    if not history.exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[float, float, float, float]]] = {}
    with history.open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated" or row["50%"] in ("N/A", ""):
                continue
            series.setdefault(row["Name"], []).append(
                (
                    float(row["Timestamp"]),
                    float(row["Requests/s"]),
                    float(row["50%"]),
                    float(row["99%"]),
                )
            )
    if not series:
        return None
    busiest = sorted(series, key=lambda name: -sum(p[1] for p in series[name]))[:5]
    start = min(points[0][0] for points in series.values())
    figure, (rate, latency) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name, points in sorted(series.items()):
        seconds = [p[0] - start for p in points]
        rate.plot(seconds, [p[1] for p in points], label=name)
        if name in busiest:  # latency of the five busiest names, to keep the chart readable
            (line,) = latency.plot(seconds, [max(p[2], 0.5) for p in points], label=f"{name} p50")
            latency.plot(
                seconds,
                [max(p[3], 0.5) for p in points],
                linestyle="--",
                color=line.get_color(),
                label=f"{name} p99",
            )
    rate.set_ylabel("requests/s")
    rate.legend(fontsize=7, ncol=2)
    latency.set_ylabel("ms")
    latency.set_yscale("log")
    latency.set_xlabel("seconds into the sale")
    latency.legend(fontsize=7, ncol=2)
    figure.suptitle("Flash sale under Locust: rate and latency per request name")
    figure.tight_layout()
    path = report_dir / "flash-sale.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_markdown(
    report_dir: Path,
    command: str,
    args: argparse.Namespace,
    rows: list[NameRow],
    totals: dict[str, int],
    rates: dict[str, float],
    profile: list[tuple[str, float]],
    verifier: str,
    undelivered: int,
    cpu: dict[str, float] | None = None,
) -> Path:
    """flash-sale.md: the command, the machine, the sizes, a row per request name, the sale's
    counts, the webhooks' rates, the profile and the verifier's report."""
    lines = [
        "# Flash sale rehearsal",
        "",
        f"`{command}`",
        "",
        *_setting(args),
        "| request | requests | failures | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {row.name} | {row.requests:,} | {row.failures} | {row.per_second:,.1f} | "
        f"{row.p50:,.0f} | {row.p99:,.0f} |"
        for row in rows
    ]
    lines += ["", "| the sale | count |", "|---|---:|"]
    lines += [f"| {name} | {value:,} |" for name, value in totals.items()]
    lines += ["", "| webhooks into MongoDB | per second |", "|---|---:|"]
    lines += [f"| {name} | {value:,.1f} |" for name, value in rates.items()]
    if profile:
        lines += ["", "Where one service worker's time went during the sale (py-spy):", ""]
        lines += ["| owner | share of samples |", "|---|---:|"]
        lines += [f"| {label} | {share:.1f} % |" for label, share in profile]
    if cpu:
        lines += ["", "| CPU over the sale, % of one core | mean | busiest second |"]
        lines += ["|---|---:|---:|"]
        lines += [
            f"| {label} | {cpu[f'{name} mean %']:.0f} | {cpu.get(f'{name} peak %', 0.0):.0f} |"
            for name, label in CPU_LABELS
            if f"{name} mean %" in cpu
        ]
    lines += [
        "",
        f"Events not delivered when the verifier ran: {undelivered}.",
        "",
        "```",
        verifier,
        "```",
        "",
        "![rate and latency](flash-sale.png)",
        "",
    ]
    path = report_dir / "flash-sale.md"
    path.write_text("\n".join(lines))
    return path


def _setting(args: argparse.Namespace) -> list[str]:
    """The machine and what shares it, and the sale's sizes."""
    return [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; Locust ({args.locust_processes} process(es), nice "
        f"{args.stack_nice + args.locust_nice}), the service ({args.workers} workers), Redis, "
        f"MongoDB and the simulator (nice {args.stack_nice}) all share it.",
        "",
        f"Sizes: {args.users} users over {args.seconds} s (arriving within "
        f"{args.spike_seconds} s; a buyer tries for up to "
        f"{args.seconds if args.patience is None else args.patience} s), "
        f"{args.stock} units of the hot SKU and of each of {args.skus} others, holds of "
        f"{args.hold_seconds} s, delivery chaos: {args.duplicate_share:.0%} duplicated, delays up "
        f"to {args.delivery_delay} s, Stripe latency {args.latency_ms[0]}-{args.latency_ms[1]} ms.",
        "",
    ]
