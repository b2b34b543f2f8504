"""carbook's ops API: migrate, verify, lint, roll back and restore the schema.

It talks to PostgreSQL directly, with psycopg, which the base install does not carry:
``pip install "carbook[ops]"``.
"""

from __future__ import annotations

try:
    import psycopg  # noqa: F401
except ImportError:  # pragma: no cover - exercised by the wheel test in a venv without it
    from ..errors import ConfigurationError

    raise ConfigurationError(
        "the ops API (migrate, verify, rollback) needs psycopg",
        hint='pip install "carbook[ops]"',
    ) from None

from .backups import NotRestored, RestoreResult
from .connection import Target
from .database import Database
from .lint import Finding, LintReport
from .migration_files import MigrateResult, Migration, MigrationStatus, PlatformState
from .rollback import ATOMIC_BOOKING_VERSION, RollbackPlan, RollbackResult
from .verify import Check, VerifyReport

__all__ = [
    "ATOMIC_BOOKING_VERSION",
    "Check",
    "Database",
    "Finding",
    "LintReport",
    "MigrateResult",
    "Migration",
    "MigrationStatus",
    "NotRestored",
    "PlatformState",
    "RestoreResult",
    "RollbackPlan",
    "RollbackResult",
    "Target",
    "VerifyReport",
]
