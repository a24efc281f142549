"""Fault drills under load: `python -m loadtests.drills [--only NAME ...] [--no-report]`.

Each drill starts a stack of its own on free loopback ports (a redis-server, an nx-27017, the
Stripe simulator with delivery chaos, the service with 2 workers; never the machine's Redis),
runs a flash sale under Locust (buyers who pay, decline, cancel), injects its fault while the
sale runs, lets the system recover, then drains the webhooks, sweeps and runs the invariant
verifier. Beside Locust, a probe asks for a hold every 100 ms and times every answer, which
gives the longest answer during the fault and the time to recover.

Drills:
- `redis-lost`: Redis killed, down for a few seconds, restarted *empty*. Requests answer 503
  meanwhile; the service notices and rebuilds its counters from MongoDB by itself.
- `redis-lost-waitlist`: as `redis-lost`, with buyers in a SKU's waiting list, two of them
  offered units: the service rebuilds the line from MongoDB's joins in join order, the two whose
  offers were lost with their holds back at their places, and offers the freed units to the
  line's head before any public buyer gets one (loadtests/drills/waitlist_lost.py).
- `redis-restart`: Redis restarted with its data (AOF), then FUNCTION FLUSH: no request fails.
- `mongodb-stopped`: MongoDB stopped for a few seconds while webhooks arrive: they answer 5xx,
  the simulator delivers them again, reserves keep working; every paid session ends with
  exactly one order.
- `worker-killed`: one of the 2 API workers SIGKILLed three times, 4 s apart, while Stripe
  answers in 0.3-0.9 s (so checkouts are half made when it dies), each kill just after a burst
  of oversold payments (so webhooks are waiting on their refunds): the supervisor starts a new
  one, cut-off webhooks are delivered again, and the sessions of checkouts the dead worker never
  recorded are recorded (and expired once their hold is gone) by the sweeper from the attempt
  each checkout writes ahead.
- `stripe-failing`: during a checkout rush (buyers arrive all sale long, browsers read products)
  Stripe answers in 2.5 s, then 500s, then 429s, then not at all, 4 s each. A checkout probe
  must get 201 or 503 with Retry-After within the gate's bound (5 s here); reserve and product
  p99 must stay within 2x those of the same sale without the fault, run first on its own stack.
- `clock-skew`: the service runs with its clock 4 minutes ahead (libfaketime, Debian's
  `faketime`), and a second service on the same stores 4 minutes behind: holds made by either
  expire when Redis's clock says, read the same through both, and Stripe's deliveries (within
  the 5-minute signature tolerance) still land.
- `chaos-vs-clean`: no Locust sale. One seeded plan of purchases (pay, refunds in full or in
  part, declines, expiries, releases, delayed payments) is made twice, each on a fresh stack:
  with clean delivery, then with 10 % of the events delivered twice and every delivery delayed
  up to 5 s (shuffled). Both verifiers must be green and the two final states, compared buyer by
  buyer, equal (loadtests/chaos_compare.py).

It writes docs/reliability.md (one table: drill, load, fault, outcome) and
docs/reliability.json, and exits non-zero when a drill's outcome is not the expected one. A run
of some drills (`--only`) replaces their rows and keeps the others'.
"""

from __future__ import annotations

from loadtests.drills.outcome import Outcome
from loadtests.drills.report import write_report

__all__ = ["Outcome", "write_report"]
