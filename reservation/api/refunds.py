"""Refunds Stripe refused for good (admin): list them, try one again now, or settle one by hand.
An oversold payment's refund that Stripe refuses is recorded (usecases/payment_events.py); the
sweeper retries it with backoff for RESERVATION_REFUND_RETRY_WINDOW_SECONDS, then a person
decides here."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from domain import errors
from domain.products import utc_text
from domain.statuses import OrderStatus
from persistence.refunds import FAILED, SETTLED, FailedRefund
from reservation.api.auth import require_admin
from reservation.api.bodies import decode, json_response, read_body, require_json
from reservation.api.openapi import Answer, Operation, Parameter
from reservation.api.refund_schemas import FailedRefundList, FailedRefundView, SettleIn
from reservation.api.services import Services, services

SESSION = Parameter("checkout_session_id", "path", str, description="Stripe's cs_… id")
STORAGE = (errors.StorageUnavailable,)
BODY = (
    errors.UnsupportedMediaType,
    errors.PayloadTooLarge,
    errors.RequestTimeout,
    errors.ServerBusy,
    errors.InvalidRequest,
)


async def view(state: Services, failed: FailedRefund) -> FailedRefundView:
    order = await state.orders.get(failed.checkout_session_id)
    window = timedelta(seconds=state.settings.refund_retry_window_seconds)
    return FailedRefundView(
        checkout_session_id=failed.checkout_session_id,
        payment_intent=failed.payment_intent,
        order_status=None if order is None else order.status,
        state=failed.state,
        code=failed.code,
        message=failed.message,
        attempts=failed.attempts,
        first_failed_at=utc_text(failed.first_failed_at),
        last_failed_at=utc_text(failed.last_failed_at),
        next_attempt_at=utc_text(failed.next_attempt_at),
        retries_until=utc_text(failed.first_failed_at + window),
        settled_note=failed.settled_note,
    )


async def _failed(state: Services, session_id: str) -> FailedRefund:
    failed = await state.webhooks.payments.failed_refunds.get(session_id)
    if failed is None:
        raise errors.NotFound(
            "no refused refund for this Checkout Session", checkout_session_id=session_id
        )
    return failed


async def _settle_body(request: Request) -> SettleIn:
    """The body is optional: none at all settles without a note; one that is sent is JSON."""
    if not request.headers.getlist("content-type"):
        if await read_body(request):
            require_json(request)  # a body without its type: 415
        return SettleIn()
    require_json(request)
    raw = await read_body(request)
    return decode(raw, SettleIn) if raw.strip() else SettleIn()


async def list_failed(request: Request) -> Response:
    state = services(request)
    require_admin(request, state.settings.admin_token)
    found = await state.webhooks.payments.failed_refunds.failed()
    return json_response(FailedRefundList([await view(state, failed) for failed in found]))


async def retry(request: Request) -> Response:
    state = services(request)
    require_admin(request, state.settings.admin_token)
    failed = await _failed(state, request.path_params["checkout_session_id"])
    if failed.state != FAILED:
        raise errors.RefundNotFailed(
            f"this refund is {failed.state}", checkout_session_id=failed.checkout_session_id
        )
    payments = state.webhooks.payments
    await payments.retry_refund(failed)
    return json_response(await view(state, await _failed(state, failed.checkout_session_id)))


async def settle(request: Request) -> Response:
    state = services(request)
    require_admin(request, state.settings.admin_token)
    body = await _settle_body(request)
    failed = await _failed(state, request.path_params["checkout_session_id"])
    if failed.state not in (FAILED, SETTLED):
        raise errors.RefundNotFailed(
            f"this refund is {failed.state}", checkout_session_id=failed.checkout_session_id
        )
    if failed.state == FAILED:
        await state.webhooks.payments.refund_closed(
            failed.checkout_session_id, OrderStatus.REFUND_SETTLED, body.note
        )
    return json_response(await view(state, await _failed(state, failed.checkout_session_id)))


REFUNDS = [
    Operation(
        "GET",
        "/v1/refunds/failed",
        list_failed,
        "Oversold payments' refunds Stripe refused for good and nobody closed yet (admin)",
        admin=True,
        answer=Answer(200, "the refused refunds, oldest first", FailedRefundList),
        errors=STORAGE,
    ),
    Operation(
        "POST",
        "/v1/refunds/{checkout_session_id}/retry",
        retry,
        "Ask Stripe again now for a refused refund (admin)",
        admin=True,
        parameters=[SESSION],
        answer=Answer(200, "the refund after the try: refunded, or failed again", FailedRefundView),
        errors=(
            errors.NotFound,
            errors.RefundNotFailed,
            errors.PaymentProviderUnavailable,
            *STORAGE,
        ),
    ),
    Operation(
        "POST",
        "/v1/refunds/{checkout_session_id}/settle",
        settle,
        "Mark a refused refund settled by hand, outside this service (admin)",
        admin=True,
        parameters=[SESSION],
        body=SettleIn,
        body_required=False,
        answer=Answer(200, "the refund, settled", FailedRefundView),
        errors=(*BODY, errors.NotFound, errors.RefundNotFailed, *STORAGE),
    ),
]
