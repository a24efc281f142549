"""The caller of a buyer's request: the customer its token names, when customer ids are verified.

With a key of customer tokens configured (RESERVATION_CUSTOMER_TOKEN_SECRET, _PUBLIC_KEY or
RESERVATION_CUSTOMER_JWKS_URL), the customer of a request is its token's `sub` and nothing else:
a body `customer_id` may only repeat it, and a reservation made for a customer is theirs alone.
Without a key, a request is whoever its body says, as before customer tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain import errors


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request. `verifying`: customer ids are verified (a key is configured);
    `customer_id`: then, the `sub` of the request's verified token (None: it sent none)."""

    customer_id: str | None = None
    verifying: bool = False

    def acting_for(self, claimed: str | None) -> str | None:
        """The customer id the request acts for, given the one its body names (`claimed`).

        Verified: the token's subject; a body id without a token is CustomerTokenRequired, one
        other than the subject CustomerMismatch. Not verified: the body's id, as sent."""
        if not self.verifying or claimed is None:
            return self.customer_id if self.verifying else claimed
        if self.customer_id is None:
            raise errors.CustomerTokenRequired(
                "customer ids are verified: send the customer's token (Authorization: Bearer)"
                " to name a customer_id"
            )
        if claimed != self.customer_id:
            raise errors.CustomerMismatch("customer_id is not the customer of the token")
        return claimed

    def check_owns(self, reservation_id: str, owner: str | None) -> None:
        """A verified customer's reservation is theirs: to anybody else it does not exist
        (NotFound, as for an unknown id). Anonymous ones, and all when ids are not verified,
        are reachable by their unguessable id."""
        if self.verifying and owner is not None and owner != self.customer_id:
            raise errors.NotFound("no such reservation", reservation_id=reservation_id)


# A request when customer ids are not verified (and the use cases' default).
ANYONE = Caller()
