"""The seed's concurrent-booking check as a library call: N new users book one car at the
same moment, and exactly one of them wins.

Users are made with the secret key, each signs in with a client of their own, and
all of them call ``book_car_atomic`` at once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid

from pydantic import BaseModel, ConfigDict

from .errors import CarbookError, ConfigurationError, ValidationError
from .models import parse_car_id
from .settings import Settings

__all__ = ["RaceAttempt", "RaceResult", "race", "run_race"]

MAX_CLIENTS = 500


class RaceAttempt(BaseModel):
    """One user's try: the outcome's code and message, and how long the call took."""

    model_config = ConfigDict(frozen=True)

    user: str
    code: str
    message: str
    ms: float


class RaceResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    car_id: str
    attempts: tuple[RaceAttempt, ...]

    @property
    def winners(self) -> tuple[RaceAttempt, ...]:
        return tuple(a for a in self.attempts if a.code == "booked")

    @property
    def losers(self) -> tuple[RaceAttempt, ...]:
        """Told "Already booked. Be fast next time."."""
        return tuple(a for a in self.attempts if a.code == "already_booked")

    @property
    def errors(self) -> tuple[RaceAttempt, ...]:
        return tuple(a for a in self.attempts if a.code not in ("booked", "already_booked"))

    @property
    def ok(self) -> bool:
        """Exactly one winner and nobody failing for another reason."""
        return len(self.winners) == 1 and not self.errors


async def race(car_id: uuid.UUID | str, clients: int = 20, *, settings: Settings | None = None) -> RaceResult:
    """Make ``clients`` users, sign each in, and have all of them book the car at once.

    Raises:
        ValidationError: a malformed car id or a number of clients outside 2 to 500.
        ConfigurationError: no secret key (it makes the users).
        CarNotFoundError: no such car (checked before any user is made).
    """
    from ._async.client import AsyncCarbook

    car = str(parse_car_id(car_id))
    if isinstance(clients, bool) or not isinstance(clients, int) or not 2 <= clients <= MAX_CLIENTS:
        raise ValidationError(f"clients must be a whole number from 2 to {MAX_CLIENTS}, not {clients!r}")
    settings = settings or Settings.resolve()
    if not settings.secret_key:
        raise ConfigurationError(
            "a race makes its users with the secret key: set SUPABASE_SECRET_KEY (or pass --secret-key / secret_key=)"
        )
    # The service role sees every car, so a booked or hidden car is told apart from a missing one.
    service = settings.model_copy(update={"key": settings.secret_key})
    run = uuid.uuid4().hex[:8]
    password = secrets.token_urlsafe(18)
    emails = [f"racer-{i:03d}@{run}.race.carbook.invalid" for i in range(clients)]
    async with AsyncCarbook(settings=service) as ops:
        await ops.cars.get(car)  # a clear error for an unknown car before any user is made
        for email in emails:
            await ops.admin.create_user(email, password)
    racers = [AsyncCarbook(settings=settings) for _ in emails]
    try:
        await asyncio.gather(*(r.auth.sign_in(e, password) for r, e in zip(racers, emails, strict=True)))
        start = asyncio.Event()

        async def attempt(email: str, cb: AsyncCarbook) -> RaceAttempt:
            await start.wait()
            began = time.perf_counter()
            code: str
            try:
                booking = await cb.bookings.book(car)
                code, message = booking.code, booking.message
            except CarbookError as exc:
                code, message = exc.code, exc.message
            ms = round((time.perf_counter() - began) * 1000, 1)
            return RaceAttempt(user=email, code=code, message=message, ms=ms)

        tasks = [asyncio.create_task(attempt(e, r)) for e, r in zip(emails, racers, strict=True)]
        await asyncio.sleep(0)  # every task is waiting on the event
        start.set()
        return RaceResult(car_id=car, attempts=tuple(await asyncio.gather(*tasks)))
    finally:
        await asyncio.gather(*(r.aclose() for r in racers))


def run_race(car_id: uuid.UUID | str, clients: int = 20, *, settings: Settings | None = None) -> RaceResult:
    """`race`, from synchronous code (it runs its own event loop). Raises as `race`."""
    return asyncio.run(race(car_id, clients, settings=settings))
