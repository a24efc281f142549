"""Reservation ids: "<pool>.<token>", so that every call about a reservation finds its pool
(and so its keys) from the id alone."""

from __future__ import annotations

import re
import secrets

from domain import errors
from domain.rules import NAME_PATTERN, TOKEN_REGEX

# The token is URL-safe base64 (domain/rules.py states the id's shape for the HTTP contract).
TOKEN_PATTERN = re.compile(TOKEN_REGEX)
# Random bytes of a new reservation id: 96 bits, unguessable, and 16 characters of URL-safe
# base64 (the id is part of the record's key and of its member in `holds`: every byte is
# stored twice per live hold).
TOKEN_BYTES = 12


def new_reservation_id(pool: str) -> str:
    """A random, URL-safe id that names its pool: "<pool>.<token>"."""
    return f"{pool}.{secrets.token_urlsafe(TOKEN_BYTES)}"


def pool_of_reservation(reservation_id: object) -> str:
    """The pool a reservation id names; NotFound for anything that is not such an id."""
    if isinstance(reservation_id, str):
        pool, dot, token = reservation_id.rpartition(".")
        if dot and TOKEN_PATTERN.fullmatch(token) and NAME_PATTERN.fullmatch(pool):
            return pool
    quoted = reservation_id if isinstance(reservation_id, str) else repr(reservation_id)
    raise errors.NotFound("no such reservation", reservation_id=quoted[:80])
