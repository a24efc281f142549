"""The `fair-start` scenario of the flash sale: a crowd in the hot SKU's waiting room.

Each user joins the room (`POST /v1/queue/{sku}` as its customer, with its token) - the
rehearsal sets the sale's start after the crowd's arrival window, so the whole crowd joins
before the start and is shuffled once at it - then polls its ticket
(`GET /v1/queue/{sku}/{ticket}`) after exactly the `poll_after_ms` the last answer told it,
nothing sooner. Then, by the status:

- `admitted`: a hold with the `admission_token`, retried after 1-3 s while the answer is sold out
  (a refusal for stock does not consume the token) and the token has more than
  `RETRY_MARGIN_SECONDS` left; once held, the same token once more, which must be refused
  (`409 admission_used`: a token makes one hold); then check-out, payment and the final order
  as the `buyers` do. One purchase per user.
- `sold_out`: the user is done.
- `expired` (its admission lapsed unused): it joins again, once. Joining again returns the
  customer's own ticket, so a join that answers `expired` too ends the user's try.

Request names: `queue join` (201), `queue join: again` (200, the same ticket), `queue poll`
(still waiting), `queue poll: admitted` / `: sold out` / `: expired`, `reserve (admitted)`,
`reserve (admitted): sold out` (and the other refusals the contract promises),
`reserve (admitted): admission lapsed` (`403 admission_invalid` for a token that had lapsed by
the time the answer came: the buyer was too late, as the contract says; before its expiry
the same answer is a failure),
`reserve (admitted): token again` (refused as promised) and
`reserve (admitted): token again: accepted` (a failure: a token made a second hold; the
verifier also finds it in the room's admissions log). A `429` is waited out (its
`Retry-After`) under `…: rate limited`; anything else unexpected is a failure.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from locust import between, tag, task

from loadtests.locust_bots import remember_hold
from loadtests.locust_products import CATALOG
from loadtests.locust_sale import Paying, answered, refusal_name

ADMITTED = "reserve (admitted)"
TOKEN_AGAIN = f"{ADMITTED}: token again"
# A sold-out hold is retried with the token only while it has more than this long left, so a
# retry never races the token's expiry (which would be refused as admission_invalid).
RETRY_MARGIN_SECONDS = 5.0
POLL_NAMES = {
    "waiting": "queue poll",
    "admitted": "queue poll: admitted",
    "sold_out": "queue poll: sold out",
    "expired": "queue poll: expired",
}


class FairStart(Paying):
    """A buyer who waits in the hot SKU's room as told, and buys once admitted."""

    weight = 6
    pause = between(1.0, 3.0)  # between two holds refused for stock, with a live token

    @tag("fair-start")
    @task
    def wait_in_line(self) -> None:
        if self.gone:
            return
        state, rejoined = self.join(), False
        while state is not None:
            status = state.get("status")
            if status == "admitted":
                self.buy_admitted(state)
                break
            if status == "expired" and not rejoined:
                state, rejoined = self.join(), True
                continue
            if status != "waiting":
                break  # sold out (or expired too often): this user is done
            time.sleep(max(int(state.get("poll_after_ms", 1000)), 0) / 1000.0)  # gevent's
            state = self.poll_ticket(str(state["ticket"]))
        self.leave()

    def join(self) -> dict[str, Any] | None:
        """POST /v1/queue/{sku} as this customer: the ticket's state, or None on a failure."""
        while True:
            with self.client.post(
                f"/v1/queue/{CATALOG.hot}",
                json={"customer_id": self.customer_id},
                headers=self.authorization(),
                name="queue join",
                catch_response=True,
            ) as response:
                if response.status_code in (200, 201):
                    if response.status_code == 200:
                        response.request_meta["name"] = "queue join: again"
                    found: dict[str, Any] = response.json()
                    return found
                if not self.waited_out(response, "queue join"):
                    response.failure(answered(response))
                    return None

    def poll_ticket(self, ticket: str) -> dict[str, Any] | None:
        """GET /v1/queue/{sku}/{ticket}: the ticket's state, or None on a failure."""
        while True:
            with self.client.get(
                f"/v1/queue/{CATALOG.hot}/{ticket}",
                headers=self.authorization(),
                name="queue poll",
                catch_response=True,
            ) as response:
                if response.status_code == 200:
                    found: dict[str, Any] = response.json()
                    response.request_meta["name"] = POLL_NAMES.get(
                        str(found.get("status")), "queue poll"
                    )
                    return found
                if not self.waited_out(response, "queue poll"):
                    response.failure(answered(response))
                    return None

    def waited_out(self, response: Any, request: str) -> bool:
        """A 429 answer: named as a refusal, its Retry-After waited out; True. Else False."""
        if response.status_code != 429:
            return False
        response.request_meta["name"] = f"{request}: rate limited"
        response.success()
        time.sleep(float(response.headers.get("Retry-After") or 1))
        return True

    def buy_admitted(self, state: dict[str, Any]) -> None:
        """Hold with the admission token (again while sold out and the token has time left),
        try the token once more, then check out and pay."""
        token = str(state["admission_token"])
        expires = datetime.fromisoformat(str(state["admission_expires_at"])).timestamp()
        while True:
            reservation_id, refusal = self.reserve_admitted(token, ADMITTED, expires)
            if reservation_id is not None:
                self.token_again(token, expires)
                self.purchase(reservation_id)
                return
            if refusal != "insufficient_stock":
                return  # refused otherwise (a failure, or a limit): this buyer is done
            pause = float(self.pause())
            if time.time() + pause > expires - RETRY_MARGIN_SECONDS:
                return  # the token runs out: the units went to others
            time.sleep(pause)

    def token_again(self, token: str, expires: float) -> None:
        """The used token once more: must be refused (a 201 is a failure, and a hold the
        verifier finds without an admission)."""
        self.reserve_admitted(token, TOKEN_AGAIN, expires)

    def reserve_admitted(self, token: str, name: str, expires: float) -> tuple[str | None, str]:
        """POST /v1/reservations with the admission token (which lapses at `expires`, epoch
        seconds): the reservation id (None when refused) and the refusal's error code ("" when
        held or failed). `403 admission_invalid` answered once the token has lapsed is the
        contract's answer to a late buyer, named `…: admission lapsed`; before, a failure."""
        body = {
            "items": [{"sku": CATALOG.hot, "quantity": 1}],
            "customer_id": self.customer_id,
            "admission_token": token,
        }
        headers = {"Idempotency-Key": str(uuid.uuid4()), **self.authorization()}
        with self.client.post(
            "/v1/reservations", json=body, headers=headers, name=name, catch_response=True
        ) as response:
            code = _error_code(response)
            if response.status_code == 201:
                reservation_id = str(response.json()["id"])
                if name == TOKEN_AGAIN:
                    response.request_meta["name"] = f"{TOKEN_AGAIN}: accepted"
                    response.failure("201: a used admission token made a second hold")
                else:
                    remember_hold(reservation_id)
                return reservation_id, ""
            expected = name == TOKEN_AGAIN and code == "admission_used"
            refusal = refusal_name(response, name)
            if code == "admission_invalid" and time.time() >= expires:
                refusal = f"{name}: admission lapsed"
            if expected or refusal is not None:
                response.request_meta["name"] = name if expected else refusal
                response.success()
                return None, code
            response.failure(answered(response))
            return None, ""


def _error_code(response: Any) -> str:
    """The answer's `error` code ("" when it has none)."""
    if response.status_code < 400:
        return ""
    try:
        return str(response.json().get("error") or "")
    except (ValueError, AttributeError):
        return ""
