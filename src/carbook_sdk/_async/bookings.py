"""Bookings: exactly one winner, however many try at once."""

from __future__ import annotations

import uuid

from .._base import (
    booking_from_result,
    ended_from_result,
)
from ..errors import ValidationError
from ..models import Booking, BookingEnded, parse_car_id
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

    async def release(self, car_id: uuid.UUID | str, *, reason: str | None = None) -> BookingEnded:
        """End a booking as an admin (a payment failed, the customer walked away): the car
        is available again, to be won by exactly one booker as before. Audited
        (``car.released``, with the reason) in the same transaction. A booker releasing
        their own booking cancels it (``car.cancelled``).

        Raises:
            ValidationError: malformed car id, or a reason longer than 500 characters
                (nothing is sent).
            NotAuthenticatedError: not signed in (or signed in anonymously).
            CarNotBookedError: the car is not booked (nothing changed).
            BookingNotYoursError: not an admin, and the booking is someone else's.
            CarNotFoundError: no such car.
        """
        cid = str(parse_car_id(car_id))
        if reason is not None and (not isinstance(reason, str) or len(reason.strip()) > 500):
            raise ValidationError("a reason is text of at most 500 characters")
        builder = await self._c._rpc("release_car", {"car_id": cid, "reason": reason}, signed_in=True)
        return ended_from_result((await self._c._call(builder.execute)).data, cid)

    async def cancel(self, car_id: uuid.UUID | str) -> BookingEnded:
        """Cancel the signed-in user's own booking: the car is available again. Audited
        (``car.cancelled``). Only one's own: an admin ends another's with `release`.

        Raises:
            ValidationError: malformed car id (nothing is sent).
            NotAuthenticatedError: not signed in (or signed in anonymously).
            CarNotBookedError: the car is not booked (nothing changed).
            BookingNotYoursError: someone else booked it (nothing changed).
            CarNotFoundError: no such car.
        """
        cid = str(parse_car_id(car_id))
        builder = await self._c._rpc("cancel_booking", {"car_id": cid}, signed_in=True)
        return ended_from_result((await self._c._call(builder.execute)).data, cid)

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
