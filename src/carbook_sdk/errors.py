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
    "CarbookConnectionError",
    "CarbookError",
    "ConfigurationError",
    "DatabaseError",
    "MigrationError",
    "NotMigratedError",
    "PostgresNotFoundError",
    "PostgresStartError",
    "RollbackRefusedError",
    "ValidationError",
    "wrap_db_errors",
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
