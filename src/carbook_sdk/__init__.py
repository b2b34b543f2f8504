"""carbook: a typed SDK for a Supabase-backed car-booking system.

A car is booked by exactly one user, however many try at once.
"""

from .config import LocalConfig, default_db_url, load_local_config, supabase_dir
from .db import (
    Check,
    Database,
    MigrateResult,
    Migration,
    MigrationStatus,
    PlatformState,
    RollbackPlan,
    RollbackResult,
    VerifyReport,
)
from .errors import (
    AccessDeniedError,
    CarbookConnectionError,
    CarbookError,
    ConfigurationError,
    DatabaseError,
    MigrationError,
    NotMigratedError,
    PostgresNotFoundError,
    PostgresStartError,
    RollbackRefusedError,
    ValidationError,
)
from .local_postgres import LocalPostgres

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "CarbookConnectionError",
    "CarbookError",
    "Check",
    "ConfigurationError",
    "Database",
    "DatabaseError",
    "LocalConfig",
    "LocalPostgres",
    "MigrateResult",
    "Migration",
    "MigrationError",
    "MigrationStatus",
    "NotMigratedError",
    "PlatformState",
    "PostgresNotFoundError",
    "PostgresStartError",
    "RollbackPlan",
    "RollbackRefusedError",
    "RollbackResult",
    "ValidationError",
    "VerifyReport",
    "__version__",
    "default_db_url",
    "load_local_config",
    "supabase_dir",
]
