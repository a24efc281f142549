"""The Stripe simulator on a loopback port for tests, with helpers to drive and inspect it.

    def test_checkout(stripe_sim: StripeSim) -> None:
        client = stripe_sim.client(max_network_retries=2)
        session = client.v1.checkout.sessions.create({...})
        event = stripe_sim.complete(session.id)            # checkout.session.completed
        body, headers = signed(event, "whsec_test")         # deliver it to the app yourself

The root conftest loads the fixtures (`pytest_plugins`). Under `filterwarnings = error`,
stripe.HTTPXClient needs httpx's `data=<str>` DeprecationWarning ignored (pyproject.toml).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import stripe
import uvicorn
from starlette.types import ASGIApp

from harness.servers import free_port
from stripesim import SimSettings, SimState, create_sim_app, encode_event, sign

JsonObject = dict[str, Any]
API_KEY = "sk_test_simulator"
# The key of the seal on the sessions the tests' services make (RESERVATION_SESSION_SECRET).
SESSION_SECRET = "test-session-secret-0123456789abcdef"


@contextlib.contextmanager
def serve(app: ASGIApp, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a background thread; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout=10)
            raise RuntimeError(f"the server on port {port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def signed(
    event: JsonObject, secret: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers with which Stripe would deliver `event`."""
    body = encode_event(event)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign(body, secret, timestamp),
    }
    return body, headers


def close_client(http_client: stripe.HTTPXClient) -> None:
    """Close the synchronous side of a stripe.HTTPXClient (the library leaves it untyped)."""
    close: Callable[[], None] = http_client.close
    close()


async def aclose_client(http_client: stripe.HTTPXClient) -> None:
    """Close the asynchronous side, on the loop that used it."""
    close: Callable[[], Awaitable[None]] = http_client.close_async
    await close()


class SimRefused(Exception):
    """A `/_sim` control answered with an error (e.g. completing an expired session)."""

    def __init__(self, status: int, error: JsonObject) -> None:
        super().__init__(f"{status}: {error.get('message')}")
        self.status = status
        self.error = error


class StripeSim:
    """A running simulator: `url` is the API base, `state` its in-process SimState."""

    def __init__(self, url: str, state: SimState) -> None:
        self.url = url
        self.state = state
        self.http = httpx.Client(base_url=url, timeout=10)
        self._clients: list[stripe.HTTPXClient] = []

    def close(self) -> None:
        self.state.release_hangs()
        for http_client in self._clients:
            close_client(http_client)
        self.http.close()

    def client(
        self,
        *,
        max_network_retries: int | None = 0,
        timeout_seconds: float = 10.0,
        api_key: str = API_KEY,
    ) -> stripe.StripeClient:
        """A synchronous official client of this simulator (closed with the fixture).
        `max_network_retries=None` leaves the library's default (which is no retries)."""
        http_client = stripe.HTTPXClient(timeout=timeout_seconds, allow_sync_methods=True)
        self._clients.append(http_client)
        return stripe.StripeClient(
            api_key,
            base_addresses={"api": self.url},
            http_client=http_client,
            max_network_retries=max_network_retries,
        )

    @contextlib.asynccontextmanager
    async def async_client(
        self, *, max_network_retries: int = 0, timeout_seconds: float = 10.0, api_key: str = API_KEY
    ) -> AsyncIterator[stripe.StripeClient]:
        """An official client for `*_async` calls, closed on the test's own event loop."""
        http_client = stripe.HTTPXClient(timeout=timeout_seconds)
        try:
            yield stripe.StripeClient(
                api_key,
                base_addresses={"api": self.url},
                http_client=http_client,
                max_network_retries=max_network_retries,
            )
        finally:
            await aclose_client(http_client)

    def _control(self, method: str, path: str, body: JsonObject | None = None) -> Any:
        response = self.http.request(method, path, json=body)
        answer = response.json()
        if response.is_error:
            raise SimRefused(response.status_code, answer.get("error", {}))
        return answer

    # Buyer, bank and merchant: each returns the event it caused.

    def complete(self, session_id: str, payment_status: str = "paid") -> JsonObject:
        path = f"/_sim/sessions/{session_id}/complete"
        event: JsonObject = self._control("POST", path, {"payment_status": payment_status})
        return event

    def async_payment(self, session_id: str, succeeded: bool = True) -> JsonObject:
        path = f"/_sim/sessions/{session_id}/async_payment"
        event: JsonObject = self._control("POST", path, {"succeeded": succeeded})
        return event

    def expire(self, session_id: str) -> JsonObject:
        event: JsonObject = self._control("POST", f"/_sim/sessions/{session_id}/expire")
        return event

    def fail_payment(self, payment_intent: str) -> JsonObject:
        event: JsonObject = self._control("POST", f"/_sim/payment_intents/{payment_intent}/fail")
        return event

    def fail_session_payment(self, session_id: str) -> JsonObject:
        event: JsonObject = self._control("POST", f"/_sim/sessions/{session_id}/fail_payment")
        return event

    def refund_event(self, payment_intent: str, amount: int | None = None) -> JsonObject:
        """The merchant refunds the payment: in full, or `amount` of it."""
        body = None if amount is None else {"amount": amount}
        event: JsonObject = self._control("POST", f"/_sim/refund_event/{payment_intent}", body)
        return event

    # Faults and logs.

    def fault(
        self,
        path: str,
        method: str = "POST",
        mode: str = "500",
        count: int | None = 1,
        **options: Any,
    ) -> None:
        """The next `count` requests to `method path` fail as `mode` (see stripesim.Fault)."""
        body = {"path": path, "method": method, "mode": mode, "count": count, **options}
        self._control("POST", "/_sim/faults", body)

    def clear_faults(self) -> None:
        self._control("DELETE", "/_sim/faults")

    def requests(self, method: str | None = None, path: str | None = None) -> list[JsonObject]:
        """API requests received (faulted ones too): method, path, params, idempotency_key…"""
        query = {k: v for k, v in (("method", method), ("path", path)) if v is not None}
        found: list[JsonObject] = self.http.get("/_sim/requests", params=query).json()["data"]
        return found

    def clear_requests(self) -> None:
        self._control("DELETE", "/_sim/requests")

    def events(self, type_: str | None = None) -> list[JsonObject]:
        query = {"type": type_} if type_ else {}
        found: list[JsonObject] = self.http.get("/_sim/events", params=query).json()["data"]
        return found

    def deliveries(self) -> list[JsonObject]:
        found: list[JsonObject] = self._control("GET", "/_sim/deliveries")["data"]
        return found

    def wait_for_deliveries(
        self, done: Callable[[list[JsonObject]], bool], timeout: float = 10.0
    ) -> list[JsonObject]:
        """Poll the delivery log until `done(deliveries)` holds."""
        deadline = time.monotonic() + timeout
        while True:
            deliveries = self.deliveries()
            if done(deliveries):
                return deliveries
            if time.monotonic() > deadline:
                raise AssertionError(f"deliveries did not settle: {deliveries}")
            time.sleep(0.02)


MakeStripeSim = Callable[..., StripeSim]


@contextlib.contextmanager
def simulators() -> Iterator[MakeStripeSim]:
    """A factory of simulators, `make(port=None, **SimSettings fields)`, all stopped at exit."""
    with contextlib.ExitStack() as stack:

        def make(port: int | None = None, **settings: Any) -> StripeSim:
            app = create_sim_app(SimSettings(**settings))
            url = stack.enter_context(serve(app, port))
            sim = StripeSim(url, app.state.sim)
            stack.callback(sim.close)
            return sim

        yield make


@pytest.fixture
def make_stripe_sim() -> Iterator[MakeStripeSim]:
    """Start simulators with settings of the test's choosing; stopped afterwards."""
    with simulators() as make:
        yield make


@pytest.fixture
def stripe_sim(make_stripe_sim: MakeStripeSim) -> StripeSim:
    """A simulator with default settings (no webhooks), fresh for each test."""
    return make_stripe_sim()
