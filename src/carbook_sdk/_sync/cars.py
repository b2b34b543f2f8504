"""GENERATED from ``carbook_sdk/_async/cars.py`` by ``scripts/unasync.py``: edit that
file and re-run the script, never this one.

Cars: the public listing, one car, my bookings; admins create and change them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Unpack

from .._base import (
    CAR_COLUMNS,
    cars_page,
    check_image_name,
    check_limit,
    check_offset,
    id_prefix,
    keyset_filter,
    keyset_filter_ascending,
    parse_car,
)
from .._base import image_name as generated_image_name
from .._concurrency import INTERRUPTIONS
from ..errors import (
    AccessDeniedError,
    CarbookConnectionError,
    CarbookError,
    CarIsBookedError,
    CarNotFoundError,
    ConflictError,
    ValidationError,
)
from ..live import AvailabilityEvent
from ..models import (
    BookingStatus,
    Car,
    CarDeletion,
    CarUpdate,
    CarUpdateFields,
    NewCar,
    Page,
    parse_car_id,
    validated,
)
from ._service import Service
from .cars_import import CarImports
from .watch import Watch

__all__ = ["CarsService"]

#: What can end a request with its effect unknown: a lost answer, or the caller stopping it.
_CUT_OFF: tuple[type[BaseException], ...] = (CarbookConnectionError, *INTERRUPTIONS)


class CarsService(CarImports, Service):
    """Cars: the public listing, one car, my bookings; admins create and change them."""

    def _table(self) -> Any:
        return self._c._from("cars")

    def list_available(
        self, limit: int = 50, *, cursor: str | None = None, offset: int | None = None
    ) -> Page[Car]:
        """Published, available cars, newest first.

        Page with ``cursor`` (the previous page's ``next_cursor``; stable while cars are
        booked) or ``offset``.

        Raises:
            ValidationError: bad limit, offset or cursor (nothing is sent).
        """
        limit = check_limit(limit)
        after = keyset_filter(cursor) if cursor is not None else None
        skip = check_offset(offset) if offset is not None else None
        self._c._session_token()
        query = (
            self._table()
            .select(CAR_COLUMNS)
            .eq("is_published", True)
            .eq("booking_status", "available")
            .order("created_at", desc=True)
            .order("id")
            .limit(limit + 1)
        )
        if after is not None:
            query = query.or_(after)
        if skip is not None:
            query = query.offset(skip)
        reply = self._c._call(query.execute)
        return cars_page(reply.data, limit, self._c._public_url, keyset=offset is None)

    def watch(self, *, reconnect: bool = True) -> Iterator[AvailabilityEvent]:
        """The public listing, live: every published, available car first (``kind="listed"``),
        then each change as the database commits it (``booked``, ``released``,
        ``published``, ``unpublished``, ``price_changed``), over Supabase Realtime's
        private topic ``cars:availability``. Iterate it (``for``); it runs until
        you stop.

        With ``reconnect`` a lost connection is joined again with a backoff (0.25 s
        doubling to 10 s, ten attempts in a row) and Realtime replays what was missed;
        no change is yielded twice, and none is skipped (after a replay that may be
        incomplete, ``unlisted``/``listed`` events bring the listing up to date).

        Raises:
            CarbookConnectionError: Realtime cannot be reached (at the start, or after
                every reconnect attempt failed).
            AccessDeniedError: Realtime refused the channel (the project lacks the
                ``live_availability`` migration's policy).
            SessionExpiredError: the session's token was refused and refreshing it did not help.
        """
        if not isinstance(reconnect, bool):
            raise ValidationError("reconnect must be true or false")
        return Watch(self._c).events(reconnect=reconnect)

    def get(self, car_id: uuid.UUID | str) -> Car:
        """One car, if the caller may see it.

        Raises:
            ValidationError: malformed id (nothing is sent).
            CarNotFoundError: no such car visible to the caller.
        """
        cid = str(parse_car_id(car_id))
        self._c._session_token()
        car = self._find(cid)
        if car is None:
            raise CarNotFoundError(car_id=cid)
        return car

    def _find(self, cid: str, *, retry: bool = True) -> Car | None:
        """The car with this id if the caller may see it, else None. ``retry``: let
        supabase-py retry a failed read itself (1 + 2 + 4 s)."""
        query = self._table().select(CAR_COLUMNS).eq("id", cid).limit(1).retry(retry)
        reply = self._c._call(query.execute)
        return parse_car(reply.data[0], self._c._public_url) if reply.data else None

    def mine(self) -> list[Car]:
        """The cars the signed-in user booked.

        Raises:
            NotAuthenticatedError: not signed in.
        """
        user_id = self._c._user_id()
        reply = self._c._call(
            self._table()
            .select(CAR_COLUMNS)
            .eq("booked_by", user_id)
            .order("booked_at", desc=True)
            .execute
        )
        return [parse_car(r, self._c._public_url) for r in reply.data]

    def list_all(
        self,
        *,
        status: BookingStatus | None = None,
        published: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
        offset: int | None = None,
    ) -> Page[Car]:
        """Every car, with filters (admins), oldest first: ordered by ``(created_at, id)``.

        Page with ``cursor`` (the previous page's ``next_cursor``): keyset paging, so a car
        added or changed between two pages is neither repeated nor skipped — added cars
        come last, where a walk through the pages still reaches them. ``offset`` is there
        for a jump to a page; its reply's ``next_cursor`` continues by keyset.

        Raises:
            ValidationError: bad filter, limit, cursor or offset, or both a cursor and an
                offset (nothing is sent).
            AccessDeniedError: not an admin.
        """
        limit = check_limit(limit)
        after = keyset_filter_ascending(cursor) if cursor is not None else None
        skip = check_offset(offset) if offset is not None else None
        if after is not None and skip is not None:
            raise ValidationError("page with cursor= or offset=, not both")
        if status not in (None, "available", "booked"):
            raise ValidationError(f"status must be 'available' or 'booked', not {status!r}")
        if published is not None and not isinstance(published, bool):
            raise ValidationError(f"published must be True, False or None, not {published!r}")
        self._c._check_admin("listing every car")
        query = self._table().select(CAR_COLUMNS).order("created_at").order("id").limit(limit + 1)
        if status is not None:
            query = query.eq("booking_status", status)
        if published is not None:
            query = query.eq("is_published", published)
        if after is not None:
            query = query.or_(after)
        if skip is not None:
            query = query.offset(skip)
        reply = self._c._call(query.execute)
        return cars_page(reply.data, limit, self._c._public_url, keyset=True, ascending=True)

    def create(
        self,
        car: NewCar | Mapping[str, Any],
        image: Path | str | bytes | None = None,
        *,
        image_name: str | None = None,
        image_path: str | None = None,
    ) -> Car:
        """Create a car, image first (admins).

        With ``image`` (a file or its bytes): validates the car and the image, uploads
        the image (to ``image_name`` if given), then inserts the row. If the insert fails,
        the uploaded image is deleted again: no orphaned image, no car without one.

        With ``image_path`` instead: the image is already in the bucket (uploaded with
        ``images.upload`` or through ``images.create_signed_upload``); the car points at
        it. It is checked to exist first, and never deleted, whatever happens to the insert.

        Raises:
            ValidationError, ImageTooLargeError, UnsupportedImageTypeError: before anything is
                sent (both or neither of ``image`` and ``image_path``; a bad name).
            ValidationError: no image at ``image_path``.
            AccessDeniedError: not an admin (nothing is left behind).
            ConflictError: a car with that ``ref`` already exists (nothing is left behind).
        """
        new = car if isinstance(car, NewCar) else validated(NewCar, car)
        if (image is None) == (image_path is None):
            raise ValidationError(
                "a car needs one image: pass image (a file to upload) or image_path (one in the bucket)"
            )
        if image is None:
            if image_name is not None:
                raise ValidationError(
                    "image_name names an image to upload; with image_path nothing is uploaded"
                )
            path = check_image_name(image_path)
            self._c._require_user()
            if not self._c.images.exists(path):
                raise ValidationError(
                    f"no image at {path!r} in the bucket: upload it first"
                    " (images.upload, or a URL from images.create_signed_upload)"
                )
        else:
            img = self._c.images.validate(image)
            path = generated_image_name(img, image_name)
            try:
                self._c.images.upload(img, name=path)
            except AccessDeniedError:
                self._c._check_admin("adding a car")  # say so plainly, not "row-level security"
                raise
            except _CUT_OFF:
                # Cut off (a lost answer, a cancelled task, Ctrl-C): Storage may have stored it
                # all the same. A name we made up is ours alone, so removing it is safe.
                if image_name is None:
                    self._c.images._delete_quietly(path)
                raise
        uploaded = image is not None  # only an image this call uploaded is ours to delete
        # The id is ours, so a lost reply can be told from a failed insert.
        car_id = str(uuid.uuid4())
        try:
            reply = self._c._call(
                self._table()
                .insert({**new.row(), "id": car_id, "image_path": path})
                .select(CAR_COLUMNS)
                .execute
            )
        except CarbookConnectionError as exc:
            try:
                saved = self._saved(car_id)
            except CarbookError:
                # Whether the row exists cannot be known now. Deleting the image could leave
                # a car without one; keeping it risks only an unused object. Keep it and say so.
                exc.detail = (
                    f"the car {car_id} may or may not have been created; its image {path} was kept."
                    f" Check with cars.get('{car_id}')"
                )
                raise exc from None
            if saved is not None:
                return saved  # the insert committed; only its answer was lost
            if uploaded:
                self._compensate(path, exc)
            raise
        except AccessDeniedError as exc:
            if uploaded:
                self._compensate(path, exc)
            else:
                self._c._check_admin("adding a car")
            raise
        except ConflictError as exc:
            if uploaded:
                self._compensate(path, exc)
            if exc.constraint == "cars_ref_key" and new.ref is not None:
                # PostgreSQL does not name the taken ref to an RLS-bound caller; we know it.
                taken = ConflictError(
                    f"a car with ref {new.ref} already exists", status=exc.status, constraint=exc.constraint
                )
                taken.detail = exc.detail
                raise taken from None
            raise
        except CarbookError as exc:
            if uploaded:
                self._compensate(path, exc)
            raise
        except INTERRUPTIONS as exc:
            # Stopped while the insert was on its way: it may have committed. Keep the
            # image if the car is there; remove it only when the car is known not to be.
            if uploaded:
                try:
                    absent = self._saved(car_id) is None
                except CarbookError:
                    absent = False  # unknown: a car without its image is the worse outcome
                if absent:
                    self._compensate(path, exc)
            raise
        return parse_car(reply.data[0], self._c._public_url)

    def resolve(self, car_id: uuid.UUID | str) -> uuid.UUID:
        """The id of the car a whole id or a unique prefix of one names (at least 8 hex
        characters, as tables show them), among the cars the caller may see.

        Raises:
            ValidationError: neither an id nor a prefix; a prefix matching several cars.
            CarNotFoundError: no car the caller may see has such an id.
        """
        key = id_prefix(car_id)
        if isinstance(key, uuid.UUID):
            return key
        self._c._session_token()
        low, high = key
        reply = self._c._call(
            self._table().select("id").gte("id", low).lte("id", high).order("id").limit(4).execute
        )
        ids = [str(r["id"]) for r in reply.data]
        if not ids:
            raise CarNotFoundError(f"no car id starts with {car_id}", car_id=None)
        if len(ids) > 1:
            shown = ", ".join(ids[:3]) + (", …" if len(ids) > 3 else "")
            raise ValidationError(f"{car_id} matches more than one car ({shown}): give more characters")
        return uuid.UUID(ids[0])

    def delete(self, car_id: uuid.UUID | str) -> CarDeletion:
        """Delete a car (admins; audited as ``car.delete``), then its image.

        A booked car is refused until its booking is released. The image is removed only
        after the row is gone, and only when no other car shows it; if removing it
        fails, the car stays deleted and the reply says so (``image_kept``, with the
        path in ``car.image_path``: remove it later with ``images.delete``).

        Raises:
            ValidationError: malformed id (nothing is sent).
            AccessDeniedError: not an admin (nothing changed).
            CarIsBookedError: the car is booked (nothing changed).
            CarNotFoundError: no such car.
        """
        cid = str(parse_car_id(car_id))
        self._c._require_user()
        reply = self._c._call(self._table().delete().eq("id", cid).execute)
        if not reply.data:
            self._c._check_admin("deleting a car")
            car = self._find(cid)
            if car is None:
                raise CarNotFoundError(car_id=cid)
            if car.booking_status == "booked":
                raise CarIsBookedError(f"car {cid} is booked: release its booking first", car_id=cid)
            raise CarNotFoundError(car_id=cid)  # pragma: no cover - deleted and re-made meanwhile
        car = parse_car(reply.data[0], self._c._public_url)
        kept: str | None = None
        if car.image_path:
            others = self._c._call(
                self._table().select("id").eq("image_path", car.image_path).limit(1).execute
            )
            if others.data:
                kept = f"another car shows the image {car.image_path}"
            else:
                problem = self._c.images._delete_quietly(car.image_path)
                if problem is not None:
                    kept = f"the image {car.image_path} could not be removed ({problem}): remove it with images.delete"
        return CarDeletion(
            car=car, image_removed=car.image_path is not None and kept is None, image_kept=kept
        )

    def _saved(self, car_id: str) -> Car | None:
        """The car if it exists, None if it does not.

        Asks a few times, since the connection that lost the insert's reply may be back
        a moment later. Raises the last CarbookError when it cannot be known.
        """
        for delay in (0.2, 0.5, 1.0, None):
            try:
                # Without supabase-py's own retries (1 + 2 + 4 s on a refused GET): this
                # loop is the retry, and the caller is waiting on it.
                return self._find(car_id, retry=False)
            except CarbookConnectionError:
                if delay is None:
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _compensate(self, path: str, exc: BaseException) -> None:
        problem = self._c.images._delete_quietly(path)
        if problem is not None and isinstance(exc, CarbookError):
            exc.detail = f"the uploaded image {path} could not be removed: {problem}"

    def update(
        self, car_id: uuid.UUID | str, changes: CarUpdate | None = None, /, **fields: Unpack[CarUpdateFields]
    ) -> Car:
        """Change a car's fields (admins): ``make``, ``model``, ``year``, ``price`` (Money),
        ``is_published`` — as keyword arguments (typed: a type checker catches ``prise=``)
        or as a `CarUpdate`. A change that changes nothing writes no audit row.

        Raises:
            ValidationError: unknown field or bad value, or both a CarUpdate and keyword
                arguments (nothing is sent).
            AccessDeniedError: not an admin.
            CarNotFoundError: no such car.
        """
        cid = str(parse_car_id(car_id))
        row = _update_row(changes, dict(fields))
        self._c._require_user()
        # The reply's columns are named: on a rolled-back schema the whole statement fails
        # (NotMigratedError) and changes nothing, instead of answering made-up defaults.
        reply = self._c._call(
            self._table().update(row).eq("id", cid).select(CAR_COLUMNS).execute
        )
        if not reply.data:
            self._c._check_admin("changing a car")
            raise CarNotFoundError(car_id=cid)
        return parse_car(reply.data[0], self._c._public_url)

    def publish(self, car_id: uuid.UUID | str) -> Car:
        """Make a car visible and bookable (admins). Raises as `update`."""
        return self.update(car_id, is_published=True)

    def unpublish(self, car_id: uuid.UUID | str) -> Car:
        """Hide a car from the listing (admins). Raises as `update`."""
        return self.update(car_id, is_published=False)

    def replace_image(
        self, car_id: uuid.UUID | str, image: Path | str | bytes, **changes: Unpack[CarUpdateFields]
    ) -> Car:
        """Upload a new image, point the car at it, then delete the old one (admins).

        ``changes`` (as `update` takes them) go in the same row update as the new image:
        all of it happens, or none of it. If the row update fails, the new image is
        deleted and the old one kept.

        Raises:
            CarbookError: the errors `create` and `update` raise, for the same reasons.
        """
        cid = str(parse_car_id(car_id))
        row = _update_row(None, dict(changes)) if changes else {}
        img = self._c.images.validate(image)
        try:
            old = self.get(cid).image_path
        except CarNotFoundError:
            self._c._check_admin("changing a car")  # a hidden car is "not found" to users
            raise
        path = self._c.images.upload(img)
        try:
            reply = self._c._call(
                self._table()
                .update({**row, "image_path": path})
                .eq("id", cid)
                .select(CAR_COLUMNS)
                .execute
            )
            if not reply.data:
                self._c._check_admin("changing a car")
                raise CarNotFoundError(car_id=cid)
        except BaseException:
            self._c.images._delete_quietly(path)
            raise
        if old and old != path:
            self._c.images._delete_quietly(old)
        return parse_car(reply.data[0], self._c._public_url)


def _update_row(changes: CarUpdate | None, fields: dict[str, Any]) -> dict[str, Any]:
    """The row update for a CarUpdate or keyword fields (validated, as people read it).

    Raises:
        ValidationError: both given, an unknown field, a bad value, nothing to change.
    """
    if changes is not None:
        if fields:
            raise ValidationError("give a CarUpdate or keyword arguments, not both")
        if not isinstance(changes, CarUpdate):
            raise ValidationError(f"changes must be a CarUpdate, not {type(changes).__name__}")
        return changes.row()
    return validated(CarUpdate, fields).row()
