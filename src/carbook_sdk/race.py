"""The seed's concurrent-booking check as a library call: N new users book one car at the
same moment, and exactly one of them wins.

Users are made with the secret key, each signs in with a client of their own, and
all of them call ``book_car_atomic`` at once. Afterwards the users are deleted again — also
when the race fails or is interrupted part way — except the winner: their booking names
them (``cars.booked_by`` references ``auth.users`` with ``on delete set null``, so deleting
them would leave a booked car that nobody booked). ``keep_users=True`` keeps every one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import time
import uuid
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from ._concurrency import gather_limited
from .errors import CarbookError, ConfigurationError, ValidationError
from .models import User, parse_car_id
from .settings import Settings

if TYPE_CHECKING:
    from ._async.client import AsyncCarbook

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
    #: The racers' accounts still there afterwards: the winner's (their booking names
    #: them), every one with ``keep_users``, and any whose deletion failed.
    kept_users: tuple[str, ...] = ()

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


async def race(
    car_id: uuid.UUID | str,
    clients: int = 20,
    *,
    settings: Settings | None = None,
    keep_users: bool = False,
) -> RaceResult:
    """Make ``clients`` users, sign each in, and have all of them book the car at once;
    then delete the users again, except the winner (and all of them with ``keep_users``).

    The users are deleted also when the race fails or is cancelled (Ctrl-C) part way.

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
    made: list[str] = []  # ids, in the order made: what the clean-up deletes
    ids: dict[str, str] = {}
    attempts: tuple[RaceAttempt, ...] = ()
    async with AsyncCarbook(settings=service) as ops:
        creating: asyncio.Future[User] | None = None
        try:
            await ops.cars.get(car)  # a clear error for an unknown car before any user is made
            for email in emails:
                # Shielded: a cancelled request may still create the user on the server,
                # so the one in flight is awaited below and deleted with the others.
                creating = asyncio.ensure_future(ops.admin.create_user(email, password))
                ids[email] = str((await asyncio.shield(creating)).id)
                made.append(ids[email])
                creating = None
            attempts = await _run(car, emails, password, settings)
        finally:
            # Also on an error or a cancellation (asyncio.run cancels this task on Ctrl-C,
            # and the awaits below still run): no racer is left behind unless asked.
            if creating is not None:
                with contextlib.suppress(CarbookError):
                    user = await creating
                    ids[user.email or ""] = str(user.id)
                    made.append(str(user.id))
            left, winner = await _clean_up(ops, car, made, keep_users)
        by_id = {v: k for k, v in ids.items()}
        kept = {*left, winner}
        return RaceResult(
            car_id=car, attempts=attempts, kept_users=tuple(by_id[u] for u in made if u in kept)
        )


async def _clean_up(ops: AsyncCarbook, car: str, made: list[str], keep: bool) -> tuple[list[str], str | None]:
    """Delete the racers but the winner; (the ids left behind, the winner's id).

    The winner is read from the car itself: after an interruption the attempts' replies
    may be lost while the booking committed. When the car cannot be read, nobody is
    deleted: the booking must keep its owner."""
    if keep or not made:
        return made, None
    try:
        booked_by = (await ops.cars.get(car)).booked_by
    except CarbookError:
        return made, None
    winner = str(booked_by) if booked_by is not None and str(booked_by) in made else None
    return await _delete_users(ops, [u for u in made if u != winner]), winner


async def _run(car: str, emails: list[str], password: str, settings: Settings) -> tuple[RaceAttempt, ...]:
    """Sign every racer in, then let all of them book at the same moment."""
    from ._async.client import AsyncCarbook

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
        attempts = asyncio.gather(*tasks)
        try:
            return tuple(await asyncio.shield(attempts))
        except asyncio.CancelledError:
            # The bookings already sent finish first: the clean-up must see who won.
            await attempts
            raise
    finally:
        await asyncio.gather(*(r.aclose() for r in racers))


async def _delete_users(ops: AsyncCarbook, user_ids: list[str]) -> list[str]:
    """Delete these users, a few at a time; the ids whose deletion failed."""
    failed: list[str] = []

    async def delete(user_id: str) -> None:
        try:
            await ops.admin.delete_user(user_id)
        except CarbookError:
            failed.append(user_id)  # reported as kept, not raised over the race's own outcome

    await gather_limited([functools.partial(delete, u) for u in user_ids], 8)
    return failed


def run_race(
    car_id: uuid.UUID | str,
    clients: int = 20,
    *,
    settings: Settings | None = None,
    keep_users: bool = False,
) -> RaceResult:
    """`race`, from synchronous code (it runs its own event loop). Raises as `race`."""
    return asyncio.run(race(car_id, clients, settings=settings, keep_users=keep_users))
