"""GENERATED from ``carbook_sdk/_async/bookings.py`` by ``scripts/unasync.py``: edit that
file and re-run the script, never this one.

Bookings: exactly one winner, however many try at once.
"""

from __future__ import annotations

import uuid

from .._base import (
    booking_from_result,
)
from ..models import Booking, parse_car_id
from ._service import Service

__all__ = ["BookingsService"]


class BookingsService(Service):
    """Book a car: exactly one winner, however many try at once."""

    def book(self, car_id: uuid.UUID | str) -> Booking:
        """Book a car for the signed-in user.

        The winner's retry returns the same booking (``booking.already_yours``).

        Raises:
            ValidationError: malformed car id (nothing is sent).
            NotAuthenticatedError: not signed in.
            CarAlreadyBookedError: someone else has it ("Already booked. Be fast next time.").
            CarNotFoundError: no such car.
            CarNotPublishedError: the car is not published.
        """
        cid = str(parse_car_id(car_id))
        builder = self._c._rpc("book_car_atomic", {"car_id": cid}, signed_in=True)
        reply = self._c._call(builder.execute)
        return booking_from_result(reply.data, cid)

    def mine(self) -> list[Booking]:
        """The signed-in user's bookings, newest first.

        Raises:
            NotAuthenticatedError: not signed in.
        """
        return [
            Booking(
                car_id=c.id,
                booked_by=c.booked_by,
                booked_at=c.booked_at,
                code="booked",
                message="Car booked.",
            )
            for c in self._c.cars.mine()
            if c.booked_by is not None and c.booked_at is not None
        ]
