"""carbook's exceptions.

Every exception the SDK raises is a :class:`CarbookError`. Subclasses are a docstring
(their default message) and, where useful, fields. Translation from supabase-py, httpx
and pydantic errors is in ``_translate.py`` (reached through each client's one request
helper); from psycopg, in ``ops/translate.py``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AccessDeniedError",
    "AuthError",
    "BackupMissingError",
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
    "MigrationDriftError",
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


class MigrationDriftError(MigrationError):
    """The migration history does not match the migration files."""

    code = "migration_drift"

    def __init__(
        self,
        message: str | None = None,
        *,
        unknown: tuple[str, ...] = (),
        changed: tuple[str, ...] = (),
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        #: Applied versions with no migration file.
        self.unknown = unknown
        #: Migration files whose content differs from what was applied.
        self.changed = changed

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "unknown": list(self.unknown), "changed": list(self.changed)}


class BackupMissingError(MigrationError):
    """The migration was rolled back once, and no backup of its data is left to put back."""

    code = "backup_missing"


class NotMigratedError(DatabaseError):
    """The database is not migrated: run `carbook db migrate`."""

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

    def __init__(self, message: str | None = None, *, constraint: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        #: The schema's unique constraint that refused it (``cars_ref_key``), for code to
        #: tell conflicts apart; never part of the message.
        self.constraint = constraint


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
