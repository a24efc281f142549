"""Redis-first stock reservation service for Stripe Checkout."""

from __future__ import annotations

from domain.reservations import CartLine, Reservation, ReservationStatus, StockLevel
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace

__all__ = [
    "CartLine",
    "Inventory",
    "KeySpace",
    "Reservation",
    "ReservationStatus",
    "StockLevel",
]
__version__ = "0.1.0"
