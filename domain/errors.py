"""The project's one error tree; the HTTP layer maps it to status codes in one place.

ReservationError
 ├── InvalidRequest            bad input, nothing touched            (422 invalid_request)
 │    └── MixedPools           a cart spanning pools                 (422 mixed_pools)
 ├── Unauthorized              admin token missing or wrong          (401 unauthorized)
 ├── CustomerTokenRequired     a body customer_id without a customer (401 customer_token_required,
 │                             token, while customer ids are verified WWW-Authenticate: Bearer)
 ├── InvalidCustomerToken      a customer token malformed, expired,  (401 invalid_customer_token,
 │                             wrongly signed or for another audience WWW-Authenticate: Bearer)
 ├── CustomerMismatch          a body customer_id other than the     (403 customer_mismatch)
 │                             token's subject
 ├── PayloadTooLarge           body over 64 KiB                      (413 payload_too_large)
 ├── UnsupportedMediaType      a body not sent as application/json   (415 unsupported_media_type)
 ├── RequestTimeout            request not received whole in time,   (408 request_timeout)
 │                             or its client gone mid-body
 ├── HeadersTooLarge           request line and headers over the     (431 headers_too_large)
 │                             limit
 ├── NotFound                  no such reservation, order, route     (404 not_found)
 ├── UnknownSku                                                      (404 unknown_sku)
 ├── InsufficientStock         details: sku, requested, available    (409)
 ├── CustomerLimitExceeded     details: sku, limit                   (409)
 ├── NotOnSale                 outside the SKU's sale window, by     (409 not_on_sale)
 │                             Redis's clock; details: sku,
 │                             starts_at, ends_at
 ├── HoldCapReached            the customer has the most live holds  (409 hold_cap_reached)
 │                             a pool allows; details: limit, held
 ├── AdmissionRequired         a reserve of a SKU whose waiting room (403 admission_required)
 │                             is on, without an admission token;
 │                             details: sku
 ├── AdmissionInvalid          an admission token unknown, expired,  (403 admission_invalid)
 │                             another buyer's or another SKU's;
 │                             details: sku
 ├── AdmissionUsed             an admission token that made a hold   (409 admission_used)
 │                             already; details: sku
 ├── NoWaitingRoom             a queue request for a SKU without a   (409 no_waiting_room)
 │                             waiting room; details: sku
 ├── TicketNotFound            no such ticket in the SKU's room      (404 ticket_not_found)
 ├── CustomerRequired          a limited SKU, no customer_id, and    (422 customer_required)
 │                             RESERVATION_REQUIRE_CUSTOMER is on;
 │                             an anonymous buyer joins a waitlist
 ├── NotInLine                 no entry of the customer in the SKU's (404 not_in_line)
 │                             waiting list; details: sku
 ├── OnSale                    a waitlist joined while the SKU has   (409 on_sale)
 │                             units to hold; details: sku, available
 ├── WaitlistClosed            a waitlist an operator closed         (409 waitlist_closed)
 ├── AlreadyCommitted          release of a paid reservation         (409)
 ├── StockBelowCommitted       stock under reserved + sold           (409)
 ├── PoolConflict              a SKU already stocked in another pool (409)
 ├── ReservationNotHeld        checkout of a lapsed or paid hold     (409 reservation_not_held)
 ├── InvalidSignature          webhook signature missing or wrong    (400 invalid_signature)
 ├── ReplayedSignature         a signed webhook delivery sent again  (400 replayed_signature)
 ├── InvalidPayload            signed webhook body that is not an event (400 invalid_payload)
 ├── InvalidHttp               bytes that are not an HTTP/1.1 request (400 invalid_http)
 ├── RateLimited               too many requests from one client     (429 rate_limited,
 │                             address or customer id                 Retry-After)
 ├── TooManyInFlight           one client address has its share of   (429, Retry-After)
 │                             a process's requests in flight
 ├── StorageUnavailable        Redis or MongoDB did not answer       (503, Retry-After)
 ├── ScriptFailed              a Redis script raised an error: a     (500 internal_error; the
 │                             bug, not an outage                     script's message is logged)
 ├── ServerBusy                a process has its most requests in    (503 server_busy, Retry-After)
 │                             flight, or its most request body
 │                             bytes in memory, or its most event
 │                             streams open (details: limit)
 ├── PaymentProviderUnavailable  Stripe failed within the bound      (503, Retry-After)
 └── PaymentProviderRefused    Stripe refused for good; details:     (502, no Retry-After)
                               stripe_code, stripe_message
"""

from __future__ import annotations

from typing import Any, ClassVar


class ReservationError(Exception):
    code: ClassVar[str] = "internal_error"
    status_code: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(ReservationError):
    code = "invalid_request"
    status_code = 422


class MixedPools(InvalidRequest):
    code = "mixed_pools"


class Unauthorized(ReservationError):
    code = "unauthorized"
    status_code = 401


class CustomerTokenRequired(ReservationError):
    """A body names a customer, customer ids are verified, and no token says who is asking."""

    code = "customer_token_required"
    status_code = 401


class InvalidCustomerToken(ReservationError):
    """A customer token that does not verify: nothing of the request is held, counted or kept."""

    code = "invalid_customer_token"
    status_code = 401


class CustomerMismatch(ReservationError):
    """A body's customer_id is not the customer the token names."""

    code = "customer_mismatch"
    status_code = 403


class PayloadTooLarge(ReservationError):
    code = "payload_too_large"
    status_code = 413


class UnsupportedMediaType(ReservationError):
    """A JSON route's body sent without `Content-Type: application/json`: what an HTML form
    on another site can send without a CORS preflight, so it is never read."""

    code = "unsupported_media_type"
    status_code = 415


class RequestTimeout(ReservationError):
    code = "request_timeout"
    status_code = 408


class HeadersTooLarge(ReservationError):
    code = "headers_too_large"
    status_code = 431


class NotFound(ReservationError):
    code = "not_found"
    status_code = 404


class UnknownSku(ReservationError):
    code = "unknown_sku"
    status_code = 404


class InsufficientStock(ReservationError):
    code = "insufficient_stock"
    status_code = 409


class NotOnSale(ReservationError):
    """A line's SKU is outside its sale window (by Redis's clock): nothing was held."""

    code = "not_on_sale"
    status_code = 409


class CustomerLimitExceeded(ReservationError):
    code = "customer_limit_exceeded"
    status_code = 409


class HoldCapReached(ReservationError):
    """The customer already has RESERVATION_MAX_HOLDS_PER_CUSTOMER live holds in the pool."""

    code = "hold_cap_reached"
    status_code = 409


class AdmissionRequired(ReservationError):
    """A SKU with a waiting room is held only with an admission token: none was sent."""

    code = "admission_required"
    status_code = 403


class AdmissionInvalid(ReservationError):
    """The admission token is not one of the SKU's live admissions for this buyer."""

    code = "admission_invalid"
    status_code = 403


class AdmissionUsed(ReservationError):
    """The admission token made a hold already: a token makes one."""

    code = "admission_used"
    status_code = 409


class NoWaitingRoom(ReservationError):
    code = "no_waiting_room"
    status_code = 409


class TicketNotFound(ReservationError):
    code = "ticket_not_found"
    status_code = 404


class CustomerRequired(ReservationError):
    code = "customer_required"
    status_code = 422


class NotInLine(ReservationError):
    """The customer has no entry in the SKU's waiting list."""

    code = "not_in_line"
    status_code = 404


class OnSale(ReservationError):
    """A waiting list is joined while the SKU is sold out: this one has units to hold now."""

    code = "on_sale"
    status_code = 409


class WaitlistClosed(ReservationError):
    """An operator closed the SKU's waiting list: nobody joins it until it is opened."""

    code = "waitlist_closed"
    status_code = 409


class AlreadyCommitted(ReservationError):
    code = "already_committed"
    status_code = 409


class StockBelowCommitted(ReservationError):
    code = "stock_below_committed"
    status_code = 409


class PoolConflict(ReservationError):
    code = "pool_conflict"
    status_code = 409


class StorageUnavailable(ReservationError):
    code = "storage_unavailable"
    status_code = 503


class ScriptFailed(ReservationError):
    """Redis ran a script of the library and it raised an error (a Lua error, a command the
    script called wrongly): a bug of the service, not an outage, so no retry helps. The
    answer says nothing of it; `script_message` (Redis's words) is for the log."""

    code = "internal_error"
    status_code = 500

    def __init__(self, script: str, script_message: str) -> None:
        super().__init__("the server failed to answer this request")
        self.script = script
        self.script_message = script_message


class ReservationNotHeld(ReservationError):
    code = "reservation_not_held"
    status_code = 409


class InvalidSignature(ReservationError):
    code = "invalid_signature"
    status_code = 400


class ReplayedSignature(ReservationError):
    """The same signed bytes (timestamp and signature) arrived before: Stripe signs every
    delivery attempt afresh, so only a replay repeats them."""

    code = "replayed_signature"
    status_code = 400


class InvalidPayload(ReservationError):
    code = "invalid_payload"
    status_code = 400


class InvalidHttp(ReservationError):
    """The bytes received are not an HTTP/1.1 request (httptools could not parse them)."""

    code = "invalid_http"
    status_code = 400


class RateLimited(ReservationError):
    """Too many requests from one client address or customer id; `retry_after` in seconds."""

    code = "rate_limited"
    status_code = 429

    def __init__(self, message: str, retry_after: int = 1, **details: object) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class TooManyInFlight(ReservationError):
    """One client address already has RESERVATION_MAX_REQUESTS_PER_CLIENT requests in flight
    in this process: its own excess, while other clients are still served."""

    code = "too_many_requests_in_flight"
    status_code = 429


class ServerBusy(ReservationError):
    code = "server_busy"
    status_code = 503


class PaymentProviderUnavailable(ReservationError):
    code = "payment_provider_unavailable"
    status_code = 503

    def __init__(
        self, message: str, retry_after: int = 5, *, sent: bool = True, **details: object
    ) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after
        # False: the request never left this process (the gate's queue or rate ran out, or no
        # key), so Stripe did nothing; True: Stripe may or may not have acted on it.
        self.sent = sent


class PaymentProviderRefused(ReservationError):
    """Stripe answered that the request can never succeed (a 4xx other than 429)."""

    code = "payment_provider_refused"
    status_code = 502


class RefundNotFailed(ReservationError):
    """The refund is not (or no longer) refused: done already, or settled by hand."""

    code = "refund_not_failed"
    status_code = 409
