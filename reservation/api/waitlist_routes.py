"""The waiting lists' rows of the route table (reservation/api/routes.py): a buyer's join and
entry (the admin may name anybody's), and the operators' line, close and open."""

from __future__ import annotations

from domain.errors import (
    CustomerLimitExceeded,
    CustomerMismatch,
    CustomerRequired,
    CustomerTokenRequired,
    InvalidCustomerToken,
    InvalidRequest,
    NotInLine,
    NotOnSale,
    OnSale,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    ServerBusy,
    StorageUnavailable,
    UnknownSku,
    UnsupportedMediaType,
    WaitlistClosed,
)
from reservation.api import waitlist
from reservation.api.openapi import Answer, Operation, Parameter
from reservation.api.schemas import CustomerId, Name
from reservation.api.waitlist_schemas import (
    WaitlistClosedView,
    WaitlistEntryView,
    WaitlistIn,
    WaitlistLineView,
    WaitlistOpenView,
)

SKU = Parameter("sku", "path", Name)
# Any customer id, "/" too: the routes' convertor takes the rest of the path.
CUSTOMER_ID = Parameter(
    "customer_id", "path", CustomerId, description="the entry's customer (URL-encoded)"
)
# As routes.py's: who the buyer is, a JSON body, a store that did not answer.
CUSTOMER = (InvalidCustomerToken, CustomerTokenRequired, CustomerMismatch)
BODY = (UnsupportedMediaType, PayloadTooLarge, RequestTimeout, ServerBusy, InvalidRequest)
STORAGE = (StorageUnavailable,)
ENTRY = (*CUSTOMER, InvalidRequest, UnknownSku, NotInLine, *STORAGE)
LIST_ADMIN = (InvalidRequest, UnknownSku, *STORAGE)

WAITLIST = [
    Operation(
        "POST",
        "/v1/waitlist/{sku}",
        waitlist.join_waitlist,
        "Join a sold-out SKU's waiting list (201), or find your entry again (200)",
        parameters=[SKU],
        body=WaitlistIn,
        answer=Answer(201, "the entry", WaitlistEntryView, also=(200,)),
        errors=(
            *CUSTOMER,
            *BODY,
            CustomerRequired,
            UnknownSku,
            *(OnSale, NotOnSale, WaitlistClosed, CustomerLimitExceeded),
            RateLimited,
            *STORAGE,
        ),
        customer=True,
    ),
    Operation(
        "GET",
        "/v1/waitlist/{sku}/{customer_id:path}",
        waitlist.get_entry,
        "A buyer's entry: waiting (its position), offered (the offer's reservation), lapsed,"
        " left or bought; with customer tokens, the customer's own (the admin: anybody's)",
        parameters=[SKU, CUSTOMER_ID],
        answer=Answer(200, "the entry", WaitlistEntryView),
        errors=ENTRY,
        customer=True,
        or_admin=True,
    ),
    Operation(
        "DELETE",
        "/v1/waitlist/{sku}/{customer_id:path}",
        waitlist.leave_waitlist,
        "Leave the line (an entry no longer waiting stays as it is); the admin removes anybody",
        parameters=[SKU, CUSTOMER_ID],
        answer=Answer(204, "left, or no longer waiting"),
        errors=ENTRY,
        customer=True,
        or_admin=True,
    ),
    Operation(
        "GET",
        "/v1/waitlist/{sku}",
        waitlist.get_line,
        "A SKU's waiting list: closed or not, its length, live offers, its first 100 (admin)",
        admin=True,
        parameters=[SKU],
        answer=Answer(200, "the line", WaitlistLineView),
        errors=LIST_ADMIN,
    ),
    Operation(
        "POST",
        "/v1/waitlist/{sku}/close",
        waitlist.close_waitlist,
        "Close a SKU's waiting list: everyone waiting leaves, nobody joins; offers stand (admin)",
        admin=True,
        parameters=[SKU],
        answer=Answer(200, "closed", WaitlistClosedView),
        errors=LIST_ADMIN,
    ),
    Operation(
        "POST",
        "/v1/waitlist/{sku}/open",
        waitlist.open_waitlist,
        "Open a SKU's waiting list again (admin)",
        admin=True,
        parameters=[SKU],
        answer=Answer(200, "open", WaitlistOpenView),
        errors=LIST_ADMIN,
    ),
]
