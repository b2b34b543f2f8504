"""carbook's exceptions.

Every exception the SDK raises is a :class:`CarbookError`. Subclasses are a docstring
(their default message) and, where useful, fields. Each carries what a web service built
on the SDK acts on: ``status``, the HTTP status it maps to (the server's own when one
answered), and ``retryable``, whether the same call may simply be made again. Translation from supabase-py, httpx
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
    "BookingNotYoursError",
    "CarAlreadyBookedError",
    "CarIsBookedError",
    "CarNotBookedError",
    "CarNotFoundError",
    "CarNotPublishedError",
    "CarbookConnectionError",
    "CarbookError",
    "ConfigurationError",
    "ConflictError",
    "DatabaseError",
    "ImageTooLargeError",
    "InvalidCredentialsError",
    "InvalidTokenError",
    "MigrationDriftError",
    "MigrationError",
    "NotAuthenticatedError",
    "NotFoundError",
    "NotMigratedError",
    "OutcomeUnknownError",
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
    #: The HTTP status this family maps to when no server said otherwise.
    http_status: ClassVar[int] = 500
    #: Whether making the same call again is safe as it is (nothing happened, or it is
    #: idempotent and only the network failed).
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        hint: str | None = None,
        detail: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or "").strip().splitlines()[0]
        #: The HTTP status: the server's when it answered, else the family's.
        self.status: int = status if status is not None else type(self).http_status
        self.retryable: bool = type(self).default_retryable if retryable is None else retryable
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
            "retryable": self.retryable,
            "hint": self.hint,
            "detail": self.detail,
        }


class ConfigurationError(CarbookError):
    """carbook is not configured correctly."""

    code = "configuration_error"


class ValidationError(CarbookError):
    """The input is not valid."""

    code = "validation_error"
    http_status = 400


class CarbookConnectionError(CarbookError):
    """Could not reach the server."""

    code = "connection_error"
    http_status = 503
    default_retryable = True


class OutcomeUnknownError(CarbookConnectionError):
    """The request was sent but no answer came: whether it took effect is unknown."""

    code = "outcome_unknown"
    http_status = 504
    #: Retry only a call that is safe to repeat (booking is: the winner's retry is
    #: ``already_yours``), or look first whether it happened.
    default_retryable = False


class AccessDeniedError(CarbookError):
    """Permission denied."""

    code = "access_denied"
    http_status = 403


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
    http_status = 503


class RollbackRefusedError(CarbookError):
    """Rollback refused: cars are booked. Roll back with force (the CLI's --force) to back them up and drop them anyway."""

    code = "rollback_refused"
    http_status = 409

    def __init__(self, message: str | None = None, *, booked_cars: int = 0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.booked_cars = booked_cars

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "booked_cars": self.booked_cars}


class NotFoundError(CarbookError):
    """Not found."""

    code = "not_found"
    http_status = 404


class ConflictError(CarbookError):
    """It already exists."""

    code = "conflict"
    http_status = 409

    def __init__(self, message: str | None = None, *, constraint: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        #: The schema's unique constraint that refused it (``cars_ref_key``), for code to
        #: tell conflicts apart; never part of the message.
        self.constraint = constraint


# Auth ------------------------------------------------------------------------------------
class AuthError(CarbookError):
    """Authentication failed."""

    code = "auth_error"
    http_status = 401


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
    http_status = 409


class InvalidTokenError(AuthError):
    """The access token is not valid: expired, forged, or not this project's."""

    code = "invalid_token"


class WeakPasswordError(AuthError, ValidationError):
    """The password is too weak."""

    code = "weak_password"
    http_status = 422


# Booking ---------------------------------------------------------------------------------
class BookingError(CarbookError):
    """The car could not be booked."""

    code = "booking_failed"
    http_status = 409

    def __init__(self, message: str | None = None, *, car_id: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.car_id = car_id

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "car_id": self.car_id}


class CarAlreadyBookedError(BookingError):
    """Already booked. Be fast next time."""

    code = "already_booked"
    http_status = 409


class CarNotFoundError(BookingError, NotFoundError):
    """Car not found."""

    code = "not_found"
    http_status = 404


class CarNotPublishedError(BookingError):
    """This car is not available for booking."""

    code = "not_published"


class CarNotBookedError(BookingError, ConflictError):
    """This car is not booked."""

    code = "not_booked"


class BookingNotYoursError(BookingError, AccessDeniedError):
    """This car is booked by someone else."""

    code = "not_yours"
    http_status = 403


class CarIsBookedError(BookingError, ConflictError):
    """The car is booked: release its booking first."""

    code = "car_booked"


# Storage ---------------------------------------------------------------------------------
class StorageError(CarbookError):
    """The file could not be stored."""

    code = "storage_error"


class ImageTooLargeError(StorageError, ValidationError):
    """The image is larger than the bucket allows."""

    code = "image_too_large"
    http_status = 413


class UnsupportedImageTypeError(StorageError, ValidationError):
    """The file is not a JPEG, PNG or WebP image."""

    code = "unsupported_image_type"
    http_status = 415


class PostgresNotFoundError(ConfigurationError):
    """PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found."""

    code = "postgres_not_found"


class PostgresStartError(CarbookError):
    """The local PostgreSQL server did not start."""

    code = "postgres_start_failed"
