"""The chaos-vs-clean drill as a row of the report: the same purchases with clean delivery,
then with chaos (loadtests/chaos_compare.py); it runs itself, not as a fault in a sale."""

from __future__ import annotations

import argparse

from loadtests import chaos_compare
from loadtests.drills.outcome import Outcome, failure_notes
from loadtests.drills.sale import PATIENT_DELIVERY
from loadtests.drills.target import Target, Timings


def runs_itself(target: Target) -> Timings:
    """The `inject` of a drill with its own `run`: it is never called."""
    raise NotImplementedError("this drill runs itself, not in a Locust sale")


def chaos_vs_clean(args: argparse.Namespace) -> Outcome:
    """The same purchases with clean delivery, then with chaos; equal ends or a failure."""
    keep = None if args.keep is None else args.keep / "chaos-vs-clean"
    found = chaos_compare.chaos_vs_clean(args.purchases, keep=keep, sim_args=PATIENT_DELIVERY)
    purchases = len(found.plan.purchases)
    return Outcome(
        drill="chaos-vs-clean",
        fault=chaos_compare.fault(purchases),
        load=found.load,
        passed=found.passed,
        oversold=found.oversold,
        verifier_passed=found.verified,
        verifier=found.verifier,
        failed_requests=sum(found.failures.values()),
        unexpected_failures=sum(found.failures.values()),
        undelivered_events=found.undelivered,
        max_answer_seconds=round(found.chaos.drive.slowest_seconds, 3),
        recovery_seconds=round(found.chaos.settle_seconds, 2),
        notes=failure_notes(found.failures),
        webhook_deliveries_cut_off=found.chaos.deliveries.cut_off,
        lost_or_doubled=found.lost_or_doubled,
    )
