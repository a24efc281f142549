"""A local Stripe-compatible server: Checkout Sessions, refunds, signed webhooks, faults.

It answers the official `stripe` library as Stripe's API does (form-encoded params,
Stripe's error shapes and statuses, Idempotency-Key replay), delivers signed events to a
webhook URL, and takes orders from tests through `/_sim/…` (or `app.state.sim`).
"""

from stripesim.app import create_sim_app
from stripesim.faults import Fault
from stripesim.settings import SimSettings
from stripesim.state import SimState
from stripesim.webhooks import encode_event, sign

__all__ = ["Fault", "SimSettings", "SimState", "create_sim_app", "encode_event", "sign"]
