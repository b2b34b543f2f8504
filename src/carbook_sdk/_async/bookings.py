"""Bookings: exactly one winner, however many try at once."""

from __future__ import annotations

import uuid

from .._base import (
    booking_from_result,
)
from ..models import Booking, parse_car_id
from ._service import AsyncService

__all__ = ["AsyncBookingsService"]


class AsyncBookingsService(AsyncService):
    """Book a car: exactly one winner, however many try at once."""

    async def book(self, car_id: uuid.UUID | str) -> Booking:
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
        builder = await self._c._rpc("book_car_atomic", {"car_id": cid}, signed_in=True)
        reply = await self._c._call(builder.execute)
        return booking_from_result(reply.data, cid)

    async def mine(self) -> list[Booking]:
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
            for c in await self._c.cars.mine()
            if c.booked_by is not None and c.booked_at is not None
        ]
