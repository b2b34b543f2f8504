"""carbook's exceptions, and the one place where driver errors become them.

Every exception the SDK raises is a :class:`CarbookError`. Subclasses are a docstring
(their default message) and, where useful, fields. Translation from psycopg (and, in
later layers, supabase-py and httpx) happens here and nowhere else.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # psycopg is imported when an error is translated, not on `import`.
    import psycopg

__all__ = [
    "AccessDeniedError",
    "AuthError",
    "BookingError",
    "CarAlreadyBookedError",
    "CarNotFoundError",
    "CarNotPublishedError",
    "CarbookConnectionError",
    "CarbookError",
    "ConfigurationError",
    "ConflictError",
    "DatabaseError",
    "ImageTooLargeError",
    "InvalidCredentialsError",
    "MigrationError",
    "NotAuthenticatedError",
    "NotFoundError",
    "NotMigratedError",
    "PostgresNotFoundError",
    "PostgresStartError",
    "RollbackRefusedError",
    "SessionExpiredError",
    "StorageError",
    "UnsupportedImageTypeError",
    "UserAlreadyExistsError",
    "ValidationError",
    "WeakPasswordError",
    "booking_error",
    "wrap_db_errors",
    "wrap_exceptions",
]


class CarbookError(Exception):
    """Something went wrong in carbook."""

    #: A stable, machine-readable identifier for the error family.
    code: ClassVar[str] = "carbook_error"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        hint: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or "").strip().splitlines()[0]
        self.status = status
        self.hint = hint
        self.detail = detail
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the error, for ``--json`` output and logs."""
        return {
            "error": type(self).__name__,
            "code": self.code,
            "message": self.message,
            "status": self.status,
            "hint": self.hint,
            "detail": self.detail,
        }


class ConfigurationError(CarbookError):
    """carbook is not configured correctly."""

    code = "configuration_error"


class ValidationError(CarbookError):
    """The input is not valid."""

    code = "validation_error"


class CarbookConnectionError(CarbookError):
    """Could not reach the server."""

    code = "connection_error"


class AccessDeniedError(CarbookError):
    """Permission denied."""

    code = "access_denied"


class DatabaseError(CarbookError):
    """The database refused the operation."""

    code = "database_error"

    def __init__(self, message: str | None = None, *, sqlstate: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.sqlstate = sqlstate

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "sqlstate": self.sqlstate}


class MigrationError(DatabaseError):
    """A migration failed; nothing of it was applied."""

    code = "migration_error"

    def __init__(self, message: str | None = None, *, migration: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.migration = migration

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "migration": self.migration}


class NotMigratedError(DatabaseError):
    """The database does not have the migration this operation needs."""

    code = "not_migrated"


class RollbackRefusedError(CarbookError):
    """Rollback refused: cars are booked. Use force to back them up and roll back anyway."""

    code = "rollback_refused"

    def __init__(self, message: str | None = None, *, booked_cars: int = 0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.booked_cars = booked_cars

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "booked_cars": self.booked_cars}


class NotFoundError(CarbookError):
    """Not found."""

    code = "not_found"


class ConflictError(CarbookError):
    """It already exists."""

    code = "conflict"


# Auth ------------------------------------------------------------------------------------
class AuthError(CarbookError):
    """Authentication failed."""

    code = "auth_error"


class NotAuthenticatedError(AuthError):
    """Sign in first."""

    code = "not_authenticated"


class InvalidCredentialsError(AuthError):
    """Invalid email or password."""

    code = "invalid_credentials"


class SessionExpiredError(AuthError):
    """The session has expired or was ended; sign in again."""

    code = "session_expired"


class UserAlreadyExistsError(AuthError, ConflictError):
    """A user with this email address already exists."""

    code = "user_already_exists"


class WeakPasswordError(AuthError, ValidationError):
    """The password is too weak."""

    code = "weak_password"


# Booking ---------------------------------------------------------------------------------
class BookingError(CarbookError):
    """The car could not be booked."""

    code = "booking_failed"

    def __init__(self, message: str | None = None, *, car_id: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.car_id = car_id

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "car_id": self.car_id}


class CarAlreadyBookedError(BookingError):
    """Already booked. Be fast next time."""

    code = "already_booked"


class CarNotFoundError(BookingError, NotFoundError):
    """Car not found."""

    code = "not_found"


class CarNotPublishedError(BookingError):
    """This car is not available for booking."""

    code = "not_published"


_BOOKING_ERRORS: dict[str, type[CarbookError]] = {
    "already_booked": CarAlreadyBookedError,
    "not_found": CarNotFoundError,
    "not_published": CarNotPublishedError,
    "not_authenticated": NotAuthenticatedError,
}


def booking_error(code: str, car_id: str | None) -> CarbookError:
    """The exception for an unsuccessful ``book_car_atomic`` outcome, chosen by its code."""
    kind = _BOOKING_ERRORS.get(code)
    if kind is None:
        return BookingError(f"unexpected booking outcome {code!r}", car_id=car_id)
    if issubclass(kind, BookingError):
        # The message is the class's own (CarAlreadyBookedError: "Already booked. Be fast next time.").
        return kind(car_id=car_id)
    return kind()


# Storage ---------------------------------------------------------------------------------
class StorageError(CarbookError):
    """The file could not be stored."""

    code = "storage_error"


class ImageTooLargeError(StorageError, ValidationError):
    """The image is larger than the bucket allows."""

    code = "image_too_large"


class UnsupportedImageTypeError(StorageError, ValidationError):
    """The file is not a JPEG, PNG or WebP image."""

    code = "unsupported_image_type"


class PostgresNotFoundError(ConfigurationError):
    """PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found."""

    code = "postgres_not_found"


class PostgresStartError(CarbookError):
    """The local PostgreSQL server did not start."""

    code = "postgres_start_failed"


# Constraint names in the migrations → what a person should read instead.
_CONSTRAINT_MESSAGES: dict[str, str] = {
    "cars_price_non_negative": "price must not be negative",
    "cars_currency_iso4217": "currency must be an ISO 4217 code of three upper-case letters, like INR",
    "cars_booking_status_valid": "booking_status must be 'available' or 'booked'",
    "cars_booking_consistent": "booking fields are inconsistent: an available car has no booking",
    "cars_year_range": "year must be between 1886 and 2100",
    "cars_make_not_blank": "make must be 1 to 100 characters",
    "cars_model_not_blank": "model must be 1 to 100 characters",
    "user_roles_role_known": "role must be 'admin'",
    "cars_ref_format": "ref must be 1 to 100 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
}

_INVALID_TEXT = re.compile(r'invalid input syntax for type (\w+): "(.*)"')


def constraint_message(constraint: str | None) -> str | None:
    """The human message for a named constraint of the carbook schema, if known."""
    return _CONSTRAINT_MESSAGES.get(constraint or "")


def _redact(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def translate_db_error(exc: psycopg.Error, *, url: str | None = None) -> CarbookError:
    """Turn a psycopg error into the carbook error a caller can act on."""
    import psycopg

    diag = getattr(exc, "diag", None)
    sqlstate = getattr(exc, "sqlstate", None)
    primary = (diag.message_primary if diag is not None else None) or str(exc).strip()
    detail = diag.message_detail if diag is not None else None
    hint = diag.message_hint if diag is not None else None

    if isinstance(exc, psycopg.OperationalError) and sqlstate is None:
        where = f" at {_redact(url)}" if url else ""
        return CarbookConnectionError(
            f"Could not connect to PostgreSQL{where}: {primary.splitlines()[0]}",
            hint="Is the database running? `carbook stack start` starts the local one.",
        )
    if sqlstate == "23514":  # check_violation
        name = diag.constraint_name if diag is not None else None
        return ValidationError(constraint_message(name) or primary, detail=detail, hint=hint)
    if sqlstate == "22P02":  # invalid_text_representation
        m = _INVALID_TEXT.search(primary)
        if m:
            return ValidationError(f"not a valid {m.group(1)}: {m.group(2)!r}")
        return ValidationError(primary)
    if sqlstate in {"23502", "23503", "23505", "22001", "22003", "22007", "22008"}:
        return ValidationError(primary, detail=detail, hint=hint)
    if sqlstate == "42501":  # insufficient_privilege, including RLS violations
        return AccessDeniedError(primary, status=403, detail=detail, hint=hint)
    return DatabaseError(primary, sqlstate=sqlstate, detail=detail, hint=hint)


@contextlib.contextmanager
def wrap_db_errors(url: str | None = None) -> Iterator[None]:
    """Re-raise any psycopg error inside the block as a :class:`CarbookError`."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise translate_db_error(exc, url=url) from exc


# supabase-py and httpx ------------------------------------------------------------------
_AUTH_CODES: dict[str, type[CarbookError]] = {
    "invalid_credentials": InvalidCredentialsError,
    "user_already_exists": UserAlreadyExistsError,
    "email_exists": UserAlreadyExistsError,
    "weak_password": WeakPasswordError,
    "refresh_token_not_found": SessionExpiredError,
    "refresh_token_already_used": SessionExpiredError,
    "session_not_found": SessionExpiredError,
    "session_expired": SessionExpiredError,
    "bad_jwt": SessionExpiredError,
    "no_authorization": NotAuthenticatedError,
    "not_admin": AccessDeniedError,
    "user_not_found": NotFoundError,
    "validation_failed": ValidationError,
    "signup_disabled": AccessDeniedError,
}

_STORAGE_STATUS: dict[str, type[CarbookError]] = {
    "400": ValidationError,
    "401": NotAuthenticatedError,
    "403": AccessDeniedError,
    "404": NotFoundError,
    "409": ConflictError,
    "413": ImageTooLargeError,
    "415": UnsupportedImageTypeError,
}

_CHECK_CONSTRAINT = re.compile(r'violates check constraint "([^"]+)"')


def _translate_postgrest(exc: Any) -> CarbookError:
    code = str(getattr(exc, "code", "") or "").strip()
    message = str(getattr(exc, "message", "") or "").strip()
    hint = getattr(exc, "hint", None)
    detail = getattr(exc, "details", None)
    if (not code and not message) or code in {"500", "502", "503", "504", "520"}:
        # No answer worth the name (a crash mid-request, a proxy page): whether the call
        # took effect is unknown, which is exactly a connection error; retry to find out.
        return CarbookConnectionError("the REST service failed without an answer", status=503)
    message = message or str(exc)
    if code in {"PGRST000", "PGRST001", "PGRST002", "PGRST003"}:
        # PostgREST (or the gateway in front of it) cannot reach the database or the REST service.
        return CarbookConnectionError(f"the REST service is unavailable: {message}", status=503)
    if code == "42501":
        return AccessDeniedError(f"permission denied: {message}", status=403)
    if code == "23514":
        m = _CHECK_CONSTRAINT.search(message)
        return ValidationError(constraint_message(m.group(1) if m else None) or message)
    if code == "22P02":
        m = _INVALID_TEXT.search(message)
        return ValidationError(f"not a valid {m.group(1)}: {m.group(2)!r}" if m else message)
    if code in {"23502", "22001", "22003", "22007", "22008", "PGRST204", "PGRST100", "PGRST102"}:
        return ValidationError(message, hint=hint, detail=detail)
    if code == "23505":
        return ConflictError(message, status=409, detail=detail)
    if code == "23503" and "cars_booked_by_fkey" in message:
        # A valid token whose user has been deleted since: the booking cannot name them.
        return NotAuthenticatedError("the signed-in user no longer exists; sign in again", status=401)
    if code == "23503":
        return ValidationError(message, detail=detail)
    if code in {"PGRST301", "PGRST302", "PGRST303"}:
        return SessionExpiredError(f"the access token was refused: {message}", status=401)
    if code == "PGRST116":
        return NotFoundError(message, status=406)
    return DatabaseError(message, sqlstate=code or None, hint=hint, detail=detail)


def _translate_auth(exc: Any) -> CarbookError:
    from supabase_auth.errors import AuthRetryableError, AuthSessionMissingError, AuthWeakPasswordError

    message = str(getattr(exc, "message", "") or exc)
    status = getattr(exc, "status", None)
    if isinstance(exc, AuthSessionMissingError):
        return NotAuthenticatedError()
    if isinstance(exc, AuthWeakPasswordError):
        reasons = ", ".join(getattr(exc, "reasons", []) or [])
        return WeakPasswordError(message, status=status, hint=f"reasons: {reasons}" if reasons else None)
    if isinstance(exc, AuthRetryableError):
        return CarbookConnectionError(f"the auth service is unreachable: {message}", status=status or None)
    kind = _AUTH_CODES.get(str(getattr(exc, "code", "") or ""))
    if kind is None:
        kind = NotAuthenticatedError if status == 401 else AccessDeniedError if status == 403 else AuthError
    if kind is InvalidCredentialsError:
        return InvalidCredentialsError(status=status)
    return kind(message, status=status)


def _translate_storage(exc: Any) -> CarbookError:
    status = str(getattr(exc, "status", "") or "")
    message = str(getattr(exc, "message", "") or exc)
    kind = _STORAGE_STATUS.get(status, StorageError)
    http = int(status) if status.isdigit() else None
    return kind(message, status=http)


def translate(exc: BaseException, *, url: str | None = None) -> CarbookError | None:
    """The carbook error for a third-party exception, or None when it is not one we know."""
    import httpx
    import psycopg
    import pydantic
    from postgrest.exceptions import APIError
    from storage3.exceptions import StorageApiError
    from supabase_auth.errors import AuthError as SupabaseAuthError

    if isinstance(exc, CarbookError):
        return exc
    if isinstance(exc, APIError):
        return _translate_postgrest(exc)
    if isinstance(exc, SupabaseAuthError):
        return _translate_auth(exc)
    if isinstance(exc, StorageApiError):
        return _translate_storage(exc)
    if isinstance(exc, psycopg.Error):
        return translate_db_error(exc, url=url)
    if isinstance(exc, httpx.TimeoutException):
        where = f" {url}" if url else ""
        return CarbookConnectionError(f"timed out waiting for{where}: {type(exc).__name__}")
    if isinstance(exc, httpx.TransportError):
        where = f" {url}" if url else " the server"
        return CarbookConnectionError(
            f"could not connect to{where}: {str(exc) or type(exc).__name__}",
            hint="Is the stack running? `carbook stack start` starts the local one.",
        )
    if isinstance(exc, httpx.HTTPStatusError):
        return CarbookError(
            f"HTTP {exc.response.status_code} from {exc.request.url}", status=exc.response.status_code
        )
    if isinstance(exc, pydantic.ValidationError):
        return ValidationError(f"unexpected reply: {exc.errors()[0]['msg']}")
    return None


@contextlib.contextmanager
def wrap_exceptions(url: str | None = None) -> Iterator[None]:
    """Re-raise supabase-py, httpx, psycopg and pydantic errors as carbook errors."""
    try:
        yield
    except CarbookError:
        raise
    except Exception as exc:
        mapped = translate(exc, url=url)
        if mapped is None:
            raise
        raise mapped from exc
