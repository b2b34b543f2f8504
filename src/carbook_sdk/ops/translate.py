"""The one place where psycopg exceptions become carbook errors, for every ops call."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import psycopg

from .._translate import INVALID_TEXT, constraint_message, unique_constraint, unique_message
from ..errors import (
    AccessDeniedError,
    CarbookConnectionError,
    CarbookError,
    ConflictError,
    DatabaseError,
    ValidationError,
)

__all__ = ["translate_db_error", "wrap_db_errors"]


def _redact(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def translate_db_error(exc: psycopg.Error, *, url: str | None = None) -> CarbookError:
    """Turn a psycopg error into the carbook error a caller can act on."""

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
        m = INVALID_TEXT.search(primary)
        if m:
            return ValidationError(f"not a valid {m.group(1)}: {m.group(2)!r}")
        return ValidationError(primary)
    # The same human messages as for the REST path (``_translate``): never a constraint name.
    if sqlstate == "23505":  # unique_violation
        name = (diag.constraint_name if diag is not None else None) or unique_constraint(primary)
        return ConflictError(unique_message(name, detail), status=409, constraint=name)
    if sqlstate == "23502":  # not_null_violation
        column = diag.column_name if diag is not None else None
        return ValidationError(f"{column} is required" if column else primary)
    if sqlstate == "23503":  # foreign_key_violation
        table = diag.table_name if diag is not None else None
        where = f" in {table}" if table else ""
        return ValidationError(f"a value{where} refers to a row that does not exist", detail=detail)
    if sqlstate in {"22001", "22003", "22007", "22008"}:
        return ValidationError(primary, detail=detail, hint=hint)
    if sqlstate == "42501":  # insufficient_privilege, including RLS violations
        return AccessDeniedError(primary, status=403, detail=detail, hint=hint)
    return DatabaseError(primary, sqlstate=sqlstate, detail=detail, hint=hint)


@contextlib.contextmanager
def wrap_db_errors(url: str | None = None) -> Iterator[None]:
    """Re-raise any psycopg error inside the block as a :class:`CarbookError`."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate_db_error(exc, url=url) from exc
