"""carbook: a typed SDK for a Supabase-backed car-booking system.

A car is booked by exactly one user, however many try at once.
"""

from ._async.client import AsyncCarbook
from ._base import ImageFile
from ._sync.client import Carbook
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
    AuthError,
    BookingError,
    CarAlreadyBookedError,
    CarbookConnectionError,
    CarbookError,
    CarNotFoundError,
    CarNotPublishedError,
    ConfigurationError,
    ConflictError,
    DatabaseError,
    ImageTooLargeError,
    InvalidCredentialsError,
    MigrationError,
    NotAuthenticatedError,
    NotFoundError,
    NotMigratedError,
    PostgresNotFoundError,
    PostgresStartError,
    RollbackRefusedError,
    SessionExpiredError,
    StorageError,
    UnsupportedImageTypeError,
    UserAlreadyExistsError,
    ValidationError,
    WeakPasswordError,
)
from .local_postgres import LocalPostgres
from .models import AuditEntry, Booking, Car, CarUpdate, NewCar, Page, User
from .money import Money
from .session import AsyncFileSessionStore, FileSessionStore
from .settings import Settings

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "AsyncCarbook",
    "AsyncFileSessionStore",
    "AuditEntry",
    "AuthError",
    "Booking",
    "BookingError",
    "Car",
    "CarAlreadyBookedError",
    "CarNotFoundError",
    "CarNotPublishedError",
    "CarUpdate",
    "Carbook",
    "CarbookConnectionError",
    "CarbookError",
    "Check",
    "ConfigurationError",
    "ConflictError",
    "Database",
    "DatabaseError",
    "FileSessionStore",
    "ImageFile",
    "ImageTooLargeError",
    "InvalidCredentialsError",
    "LocalConfig",
    "LocalPostgres",
    "MigrateResult",
    "Migration",
    "MigrationError",
    "MigrationStatus",
    "Money",
    "NewCar",
    "NotAuthenticatedError",
    "NotFoundError",
    "NotMigratedError",
    "Page",
    "PlatformState",
    "PostgresNotFoundError",
    "PostgresStartError",
    "RollbackPlan",
    "RollbackRefusedError",
    "RollbackResult",
    "SessionExpiredError",
    "Settings",
    "StorageError",
    "UnsupportedImageTypeError",
    "User",
    "UserAlreadyExistsError",
    "ValidationError",
    "VerifyReport",
    "WeakPasswordError",
    "__version__",
    "default_db_url",
    "load_local_config",
    "supabase_dir",
]
