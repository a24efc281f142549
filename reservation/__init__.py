"""Redis-first stock reservation service for Stripe Checkout."""

from __future__ import annotations

from reservation.inventory import Inventory
from reservation.keys import KeySpace
from reservation.models import CartLine, Reservation, ReservationStatus, StockLevel

__all__ = [
    "CartLine",
    "Inventory",
    "KeySpace",
    "Reservation",
    "ReservationStatus",
    "StockLevel",
]
__version__ = "0.1.0"
