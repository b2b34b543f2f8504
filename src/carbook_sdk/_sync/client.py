"""The sync client, ``Carbook``.

GENERATED from ``carbook_sdk/_async/client.py`` by ``scripts/unasync.py``: edit that
file and re-run the script, never this one.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from supabase import Client, ClientOptions
from supabase_auth import SyncMemoryStorage, SyncSupportedStorage

from .._base import (
    ImageFile,
    booking_from_result,
    cars_page,
    check_email,
    check_limit,
    check_offset,
    check_password,
    image_name,
    keyset_filter,
    load_image,
    parse_car,
)
from ..db import Database
from ..errors import (
    AccessDeniedError,
    CarbookConnectionError,
    CarbookError,
    CarNotFoundError,
    ConfigurationError,
    NotAuthenticatedError,
    NotFoundError,
    ValidationError,
    wrap_exceptions,
)
from ..models import AuditEntry, Booking, Car, CarUpdate, NewCar, Page, User, parse_car_id, validated
from ..settings import Settings

__all__ = ["Carbook"]

CAR_COLUMNS = "*"


class Carbook:
    """The carbook client (sync). One client is one signed-in user at a time.

    Build it from explicit arguments, the environment (``SUPABASE_URL``,
    ``SUPABASE_ANON_KEY``, ``SUPABASE_SERVICE_ROLE_KEY``, ``SUPABASE_DB_URL`` and their
    ``CARBOOK_*`` twins) or the local stack (``Carbook.local()``)::

        with Carbook.local() as cb:
            cb.auth.sign_in("driver@carbook.local", "carbook-driver")
            page = cb.cars.list_available(limit=10)
            booking = cb.bookings.book(page.items[0].id)

    Raises:
        ConfigurationError: the settings are missing or invalid.
    """

    def __init__(
        self,
        url: str | None = None,
        anon_key: str | None = None,
        *,
        service_role_key: str | None = None,
        db_url: str | None = None,
        timeout: float | None = None,
        session_store: SyncSupportedStorage | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or Settings.resolve(
            url=url, anon_key=anon_key, service_role_key=service_role_key, db_url=db_url, timeout=timeout
        )
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.settings.timeout),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            follow_redirects=True,
        )
        self._sb = Client(
            self.settings.url,
            self.settings.anon_key,
            ClientOptions(
                storage=session_store or SyncMemoryStorage(),
                auto_refresh_token=False,  # refreshed on demand: no background timers
                persist_session=True,
                httpx_client=self._http,
                flow_type="implicit",  # password sign-in needs no PKCE verifier on disk
            ),
        )
        self._service: Client | None = None
        # One refresh at a time: two tasks refreshing with the same single-use refresh
        # token would look like token theft to the server, which then ends the session.
        self._session_lock = threading.Lock()
        self._restored = False
        self._admin_for: str | None = None
        self._is_admin = False
        self.auth = AuthService(self)
        self.cars = CarsService(self)
        self.bookings = BookingsService(self)
        self.images = ImagesService(self)
        self.audit = AuditService(self)
        self.admin = AdminService(self)

    @classmethod
    def local(
        cls,
        state_dir: Path | None = None,
        *,
        timeout: float | None = None,
        session_store: SyncSupportedStorage | None = None,
    ) -> Carbook:
        """A client for the local stack (``carbook stack start``), ignoring the environment.

        Raises:
            ConfigurationError: the local settings are invalid.
        """
        settings = Settings.resolve(env={}, state_dir=state_dir, timeout=timeout)
        return cls(settings=settings, session_store=session_store)

    @classmethod
    def from_env(
        cls, *, timeout: float | None = None, session_store: SyncSupportedStorage | None = None
    ) -> Carbook:
        """A client from ``SUPABASE_*``/``CARBOOK_*`` variables only (no local defaults).

        Raises:
            ConfigurationError: a variable is missing or invalid.
        """
        settings = Settings.resolve(use_local_defaults=False, timeout=timeout)
        return cls(settings=settings, session_store=session_store)

    def __repr__(self) -> str:
        return f"Carbook(url={self.settings.url!r})"

    @property
    def db(self) -> Database:
        """Schema operations (migrate, status, verify, rollback) over ``db_url``.

        These are ops calls over a direct, blocking PostgreSQL connection, on both
        clients; from async code, run them in a thread (``asyncio.to_thread``).

        Raises:
            ConfigurationError: no database URL is configured.
        """
        if not self.settings.db_url:
            raise ConfigurationError("no database URL: pass db_url or set SUPABASE_DB_URL")
        return Database(self.settings.db_url)

    def close(self) -> None:
        """Close the client's connections."""
        self._http.close()

    def __enter__(self) -> Carbook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Internals --------------------------------------------------------------------------
    def _session(self) -> Any:
        """The signed-in session (refreshed when about to expire), or None."""
        with self._session_lock:
            with wrap_exceptions(self.settings.url):
                session = self._sb.auth.get_session()
        if session is not None and not self._restored:
            # A session restored from the store: make REST and Storage use it.
            self._sb.options.headers["Authorization"] = f"Bearer {session.access_token}"
            self._sb._postgrest = None
            self._sb._storage = None
        self._restored = True
        return session

    def _session_token(self) -> str | None:
        """The signed-in user's access token (refreshed when about to expire), or None."""
        session = self._session()
        return str(session.access_token) if session else None

    # Every request builder comes from these, after the session is in place: a builder
    # made before a stored session is restored would still carry the anon key.
    def _from(self, table: str) -> Any:
        self._session_token()
        return self._sb.table(table)

    def _rpc(self, fn: str, params: dict[str, Any], *, signed_in: bool = False) -> Any:
        """An RPC builder; ``signed_in``: refuse without a session (one session lookup
        instead of two on the booking path)."""
        token = self._session_token()
        if signed_in and token is None:
            raise NotAuthenticatedError("sign in first")
        return self._sb.rpc(fn, params)

    def _bucket(self) -> Any:
        self._session_token()
        return self._sb.storage.from_(self.settings.bucket)

    def _require_user(self) -> str:
        token = self._session_token()
        if token is None:
            raise NotAuthenticatedError("sign in first")
        return token

    def _user_id(self) -> str:
        session = self._session()
        if session is None:
            raise NotAuthenticatedError("sign in first")
        return str(session.user.id)

    def _check_admin(self, what: str) -> None:
        if not self.auth.is_admin():
            raise AccessDeniedError(f"{what} is for admins only", status=403)

    def _service_client(self) -> Client:
        if self._service is None:
            key = self.settings.service_role_key
            if not key:
                raise ConfigurationError(
                    "this needs the service_role key: pass service_role_key or set SUPABASE_SERVICE_ROLE_KEY"
                )
            self._service = Client(
                self.settings.url,
                key,
                ClientOptions(
                    storage=SyncMemoryStorage(),
                    auto_refresh_token=False,
                    persist_session=False,
                    httpx_client=self._http,
                ),
            )
        return self._service

    def _public_url(self, path: str) -> str:
        return f"{self.settings.url}/storage/v1/object/public/{self.settings.bucket}/{path}"


class _Service:
    def __init__(self, client: Carbook) -> None:
        self._c = client

    @property
    def _url(self) -> str:
        return self._c.settings.url


class AuthService(_Service):
    """Sign up, sign in and out, the current user."""

    def sign_up(self, email: str, password: str, *, data: Mapping[str, Any] | None = None) -> User:
        """Create an account and sign in.

        Raises:
            NotAuthenticatedError: the project confirms email addresses first (the account
                exists; sign in after confirming).
            ValidationError: malformed email or empty password (nothing is sent).
            UserAlreadyExistsError: the email is taken.
            WeakPasswordError: the password is too short.
        """
        email, password = check_email(email), check_password(password)
        with wrap_exceptions(self._url):
            reply = self._c._sb.auth.sign_up(
                {"email": email, "password": password, "options": {"data": dict(data or {})}}
            )
        if reply.user is None or reply.session is None:
            # A project with email confirmations on: the account exists, the session does not.
            raise NotAuthenticatedError(
                "account created; confirm the email address, then sign in", status=200
            )
        return validated(User, reply.user.model_dump())

    def sign_in(self, email: str, password: str) -> User:
        """Sign in with email and password.

        Raises:
            ValidationError: malformed email or empty password (nothing is sent).
            InvalidCredentialsError: wrong email or password.
        """
        email, password = check_email(email), check_password(password)
        with wrap_exceptions(self._url):
            reply = self._c._sb.auth.sign_in_with_password({"email": email, "password": password})
        assert reply.user is not None
        return validated(User, reply.user.model_dump())

    def sign_out(self) -> None:
        """End the session (everywhere) and forget it locally. Harmless when signed out."""
        if self._c._session_token() is None:
            return
        with wrap_exceptions(self._url):
            self._c._sb.auth.sign_out()

    def current_user(self) -> User | None:
        """The signed-in user as the server knows them, or None when signed out.

        Raises:
            SessionExpiredError: the session was ended elsewhere.
        """
        token = self._c._session_token()
        if token is None:
            return None
        with wrap_exceptions(self._url):
            reply = self._c._sb.auth.get_user(token)
        return validated(User, reply.user.model_dump()) if reply else None

    def refresh(self) -> User:
        """Get a new access token now.

        Raises:
            NotAuthenticatedError: not signed in.
            SessionExpiredError: the refresh token was revoked or already used.
        """
        self._c._require_user()
        with self._c._session_lock:
            with wrap_exceptions(self._url):
                reply = self._c._sb.auth.refresh_session()
        assert reply.user is not None
        return validated(User, reply.user.model_dump())

    def access_token(self) -> str | None:
        """The current access token (refreshed when about to expire), or None."""
        return self._c._session_token()

    def is_admin(self) -> bool:
        """Whether the signed-in user has the admin role (False when signed out)."""
        token = self._c._session_token()
        if token is None:
            return False
        if self._c._admin_for != token:
            user_id = self._c._user_id()
            with wrap_exceptions(self._url):
                reply = (
                    (self._c._from("user_roles"))
                    .select("role")
                    .eq("user_id", user_id)
                    .eq("role", "admin")
                    .execute()
                )
            self._c._is_admin = bool(reply.data)
            self._c._admin_for = token
        return self._c._is_admin


class ImagesService(_Service):
    """Car images in the ``car-images`` bucket: validated by content, uploaded, removed."""

    def validate(self, image: Path | str | bytes) -> ImageFile:
        """Check an image without sending it: type by magic bytes, size by the bucket's limit.

        Raises:
            ValidationError: missing or empty file.
            ImageTooLargeError: over the bucket's limit.
            UnsupportedImageTypeError: not a JPEG, PNG or WebP by content.
        """
        s = self._c.settings
        return load_image(image, max_bytes=s.image_max_bytes, allowed=s.image_types)

    def upload(self, image: Path | str | bytes | ImageFile, *, name: str | None = None) -> str:
        """Validate and upload an image (admins); returns its path in the bucket.

        Raises:
            ValidationError, ImageTooLargeError, UnsupportedImageTypeError: before sending.
            NotAuthenticatedError: not signed in.
            AccessDeniedError: not an admin (storage policies refuse it).
        """
        img = image if isinstance(image, ImageFile) else self.validate(image)
        path = image_name(img, name)
        self._c._require_user()
        with wrap_exceptions(self._url):
            (self._c._bucket()).upload(
                path, img.data, {"content-type": img.mime, "cache-control": "3600"}
            )
        return path

    def public_url(self, path: str) -> str:
        """The image's public URL (any browser can fetch it)."""
        return self._c._public_url(path)

    def delete(self, path: str) -> None:
        """Delete an image (admins).

        Raises:
            NotFoundError: no such image, or not allowed to delete it.
        """
        self._c._require_user()
        with wrap_exceptions(self._url):
            removed = (self._c._bucket()).remove([path])
        if not removed:
            raise NotFoundError(f"image {path!r} not found (or not yours to delete)")

    def _delete_quietly(self, path: str) -> str | None:
        """Compensation: delete an upload; returns why it failed, if it did."""
        try:
            self.delete(path)
        except CarbookError as exc:
            return str(exc)
        return None


class CarsService(_Service):
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
            (self._table())
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
        with wrap_exceptions(self._url):
            reply = query.execute()
        return cars_page(reply.data, limit, self._c._public_url, keyset=offset is None)

    def get(self, car_id: uuid.UUID | str) -> Car:
        """One car, if the caller may see it.

        Raises:
            ValidationError: malformed id (nothing is sent).
            CarNotFoundError: no such car visible to the caller.
        """
        cid = str(parse_car_id(car_id))
        self._c._session_token()
        with wrap_exceptions(self._url):
            reply = (self._table()).select(CAR_COLUMNS).eq("id", cid).limit(1).execute()
        if not reply.data:
            raise CarNotFoundError(car_id=cid)
        return parse_car(reply.data[0], self._c._public_url)

    def mine(self) -> list[Car]:
        """The cars the signed-in user booked.

        Raises:
            NotAuthenticatedError: not signed in.
        """
        user_id = self._c._user_id()
        with wrap_exceptions(self._url):
            reply = (
                (self._table())
                .select(CAR_COLUMNS)
                .eq("booked_by", user_id)
                .order("booked_at", desc=True)
                .execute()
            )
        return [parse_car(r, self._c._public_url) for r in reply.data]

    def by_refs(self, refs: list[str]) -> dict[str, Car]:
        """The cars already carrying these import keys, by key (admins).

        Raises:
            AccessDeniedError: not an admin.
        """
        self._c._check_admin("looking cars up by import key")
        found: dict[str, Car] = {}
        for start in range(0, len(refs), 200):
            chunk = refs[start : start + 200]
            with wrap_exceptions(self._url):
                reply = (self._table()).select(CAR_COLUMNS).in_("ref", chunk).execute()
            for row in reply.data:
                car = parse_car(row, self._c._public_url)
                if car.ref is not None:
                    found[car.ref] = car
        return found

    def list_all(
        self,
        *,
        status: str | None = None,
        published: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Car]:
        """Every car, with filters (admins).

        Raises:
            ValidationError: bad filter, limit or offset.
            AccessDeniedError: not an admin.
        """
        limit, offset = check_limit(limit), check_offset(offset)
        if status not in (None, "available", "booked"):
            raise ValidationError(f"status must be 'available' or 'booked', not {status!r}")
        if published is not None and not isinstance(published, bool):
            raise ValidationError(f"published must be True, False or None, not {published!r}")
        self._c._check_admin("listing every car")
        query = (self._table()).select(CAR_COLUMNS).order("created_at", desc=True).order("id")
        if status is not None:
            query = query.eq("booking_status", status)
        if published is not None:
            query = query.eq("is_published", published)
        with wrap_exceptions(self._url):
            reply = query.range(offset, offset + limit).execute()
        page = cars_page(reply.data, limit, self._c._public_url, keyset=False)
        if len(reply.data) > limit:
            page.next_cursor = str(offset + limit)
        return page

    def create(
        self, car: NewCar | Mapping[str, Any], image: Path | str | bytes, *, image_name: str | None = None
    ) -> Car:
        """Create a car, image first (admins).

        Validates the car and the image, uploads the image, then inserts the row. If the
        insert fails, the uploaded image is deleted again: no orphaned image, no car
        without one.

        Raises:
            ValidationError, ImageTooLargeError, UnsupportedImageTypeError: before anything is sent.
            AccessDeniedError: not an admin (nothing is left behind).
        """
        new = car if isinstance(car, NewCar) else validated(NewCar, car)
        img = self._c.images.validate(image)
        try:
            path = self._c.images.upload(img, name=image_name)
        except AccessDeniedError:
            self._c._check_admin("adding a car")  # say so plainly, not "row-level security"
            raise
        # The id is ours, so a lost reply can be told from a failed insert.
        car_id = str(uuid.uuid4())
        try:
            with wrap_exceptions(self._url):
                reply = (
                    (self._table()).insert({**new.row(), "id": car_id, "image_path": path}).execute()
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
            self._compensate(path, exc)
            raise
        except BaseException as exc:
            self._compensate(path, exc)
            raise
        return parse_car(reply.data[0], self._c._public_url)

    def _saved(self, car_id: str) -> Car | None:
        """The car if it exists, None if it does not.

        Asks a few times, since the connection that lost the insert's reply may be back
        a moment later. Raises the last CarbookError when it cannot be known.
        """
        for delay in (0.2, 0.5, 1.0, None):
            try:
                return self.get(car_id)
            except CarNotFoundError:
                return None
            except CarbookConnectionError:
                if delay is None:
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _compensate(self, path: str, exc: BaseException) -> None:
        problem = self._c.images._delete_quietly(path)
        if problem is not None and isinstance(exc, CarbookError):
            exc.detail = f"the uploaded image {path} could not be removed: {problem}"

    def update(self, car_id: uuid.UUID | str, **changes: Any) -> Car:
        """Change a car's fields (admins): ``make``, ``model``, ``year``, ``price`` (Money), ``is_published``.

        Raises:
            ValidationError: unknown field or bad value (nothing is sent).
            AccessDeniedError: not an admin.
            CarNotFoundError: no such car.
        """
        cid = str(parse_car_id(car_id))
        row = validated(CarUpdate, changes).row()
        self._c._require_user()
        with wrap_exceptions(self._url):
            reply = (self._table()).update(row).eq("id", cid).execute()
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

    def replace_image(self, car_id: uuid.UUID | str, image: Path | str | bytes, **changes: Any) -> Car:
        """Upload a new image, point the car at it, then delete the old one (admins).

        ``changes`` (as `update` takes them) go in the same row update as the new image:
        all of it happens, or none of it. If the row update fails, the new image is
        deleted and the old one kept.

        Raises:
            as `create` and `update`.
        """
        cid = str(parse_car_id(car_id))
        row = validated(CarUpdate, changes).row() if changes else {}
        img = self._c.images.validate(image)
        try:
            old = (self.get(cid)).image_path
        except CarNotFoundError:
            self._c._check_admin("changing a car")  # a hidden car is "not found" to users
            raise
        path = self._c.images.upload(img)
        try:
            with wrap_exceptions(self._url):
                reply = (
                    (self._table()).update({**row, "image_path": path}).eq("id", cid).execute()
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


class BookingsService(_Service):
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
        with wrap_exceptions(self._url):
            reply = builder.execute()
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


class AuditService(_Service):
    """The audit trail (admins)."""

    def list(
        self,
        *,
        car_id: uuid.UUID | str | None = None,
        actor_id: uuid.UUID | str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit rows, newest first, filtered by car, actor, action and time.

        Raises:
            ValidationError: malformed id or limit.
            AccessDeniedError: not an admin.
        """
        limit = check_limit(limit)
        record = str(parse_car_id(car_id)) if car_id is not None else None
        actor = str(parse_car_id(actor_id, "user id")) if actor_id is not None else None
        if since is not None and not isinstance(since, datetime):
            raise ValidationError(f"since must be a datetime, not {since!r}")
        # Before building the query: a session restored from the store must be in place.
        self._c._check_admin("the audit log")
        query = (
            (self._c._from("audit_logs"))
            .select("*")
            .order("created_at", desc=True)
            .order("id", desc=True)
        )
        if record is not None:
            query = query.eq("record_id", record)
        if actor is not None:
            query = query.eq("actor_id", actor)
        if action is not None:
            query = query.eq("action", action)
        if since is not None:
            query = query.gte("created_at", since.isoformat())
        with wrap_exceptions(self._url):
            reply = query.limit(limit).execute()
        return [validated(AuditEntry, r) for r in reply.data]


class AdminService(_Service):
    """User and role management with the service_role key."""

    def create_user(self, email: str, password: str, *, admin: bool = False) -> User:
        """Create a confirmed user (optionally an admin).

        Raises:
            ConfigurationError: no service_role key.
            UserAlreadyExistsError: the email is taken.
            WeakPasswordError: the password is too short.
        """
        email, password = check_email(email), check_password(password)
        service = self._c._service_client()
        with wrap_exceptions(self._url):
            reply = service.auth.admin.create_user(
                {"email": email, "password": password, "email_confirm": True}
            )
        user = validated(User, reply.user.model_dump())
        if admin:
            self.grant(user.id)
        return user

    def find_user(self, email: str) -> User:
        """The user with this email.

        Raises:
            NotFoundError: no such user.
        """
        email = check_email(email).lower()
        service = self._c._service_client()
        page = 1
        while True:
            with wrap_exceptions(self._url):
                users = service.auth.admin.list_users(page=page, per_page=1000)
            for u in users:
                if (u.email or "").lower() == email:
                    return validated(User, u.model_dump())
            if len(users) < 1000:
                raise NotFoundError(f"no user with email {email!r}")
            page += 1

    def _service_and_user(self, user: uuid.UUID | str) -> tuple[Client, str]:
        """The service_role client and the user's id (given an id or an email)."""
        service = self._c._service_client()
        if isinstance(user, str) and "@" in user:
            return service, str((self.find_user(user)).id)
        return service, str(parse_car_id(user, "user (an email or a user id)"))

    def grant(self, user: uuid.UUID | str) -> None:
        """Make a user (id or email) an admin. Harmless when already one.

        Raises:
            ConfigurationError: no service_role key.
            NotFoundError: no such user.
        """
        service, user_id = self._service_and_user(user)
        with wrap_exceptions(self._url):
            (
                service.table("user_roles")
                .upsert(
                    {"user_id": user_id, "role": "admin"}, on_conflict="user_id,role", ignore_duplicates=True
                )
                .execute()
            )

    def revoke(self, user: uuid.UUID | str) -> None:
        """Take the admin role away from a user (id or email). Harmless when not one.

        Raises:
            ConfigurationError: no service_role key.
            NotFoundError: no such user.
        """
        service, user_id = self._service_and_user(user)
        with wrap_exceptions(self._url):
            service.table("user_roles").delete().eq("user_id", user_id).eq("role", "admin").execute()

    def delete_user(self, user: uuid.UUID | str) -> None:
        """Delete a user (id or email).

        Raises:
            ConfigurationError: no service_role key.
            NotFoundError: no such user.
        """
        service, user_id = self._service_and_user(user)
        with wrap_exceptions(self._url):
            service.auth.admin.delete_user(user_id)
