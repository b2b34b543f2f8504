"""carbook: a typed SDK for a Supabase-backed car-booking system.

A car is booked by exactly one user, however many try at once.

Names are imported on first use, so ``import carbook_sdk`` (and ``carbook --help``)
does not load supabase-py, httpx or psycopg until they are needed. The ops names
(``Database`` and its results) need the ``ops`` extra: ``pip install "carbook[ops]"``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._async.client import AsyncCarbook
    from ._base import ImageFile
    from ._sync.client import Carbook
    from .config import LocalConfig, default_db_url, load_local_config, supabase_dir
    from .errors import (
        AccessDeniedError,
        AuthError,
        BackupMissingError,
        BookingError,
        BookingNotYoursError,
        CarAlreadyBookedError,
        CarbookConnectionError,
        CarbookError,
        CarIsBookedError,
        CarNotBookedError,
        CarNotFoundError,
        CarNotPublishedError,
        ConfigurationError,
        ConflictError,
        DatabaseError,
        ImageTooLargeError,
        InvalidCredentialsError,
        InvalidTokenError,
        MigrationDriftError,
        MigrationError,
        NotAuthenticatedError,
        NotFoundError,
        NotMigratedError,
        OutcomeUnknownError,
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
    from .live import AvailabilityEvent
    from .models import (
        AdminBooking,
        AuditEntry,
        Booking,
        BookingEnded,
        BookingStatus,
        Car,
        CarDeletion,
        CarUpdate,
        CarUpdateFields,
        Claims,
        NewCar,
        Page,
        SignedUpload,
        SortOrder,
        User,
        UserIdentity,
    )
    from .money import Money
    from .ops import (
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
    from .session import AsyncFileSessionStore, FileSessionStore
    from .settings import Settings

_LAZY: dict[str, str] = {
    "AccessDeniedError": ".errors",
    "AdminBooking": ".models",
    "AsyncCarbook": "._async.client",
    "AsyncFileSessionStore": ".session",
    "AuditEntry": ".models",
    "AuthError": ".errors",
    "AvailabilityEvent": ".live",
    "BackupMissingError": ".errors",
    "Booking": ".models",
    "BookingEnded": ".models",
    "BookingError": ".errors",
    "BookingNotYoursError": ".errors",
    "BookingStatus": ".models",
    "Car": ".models",
    "CarAlreadyBookedError": ".errors",
    "CarDeletion": ".models",
    "CarIsBookedError": ".errors",
    "CarNotBookedError": ".errors",
    "CarNotFoundError": ".errors",
    "CarNotPublishedError": ".errors",
    "CarUpdate": ".models",
    "CarUpdateFields": ".models",
    "Carbook": "._sync.client",
    "CarbookConnectionError": ".errors",
    "CarbookError": ".errors",
    "Check": ".ops",
    "Claims": ".models",
    "ConfigurationError": ".errors",
    "ConflictError": ".errors",
    "Database": ".ops",
    "DatabaseError": ".errors",
    "FileSessionStore": ".session",
    "ImageFile": "._base",
    "ImageTooLargeError": ".errors",
    "InvalidCredentialsError": ".errors",
    "InvalidTokenError": ".errors",
    "LocalConfig": ".config",
    "MigrateResult": ".ops",
    "Migration": ".ops",
    "MigrationDriftError": ".errors",
    "MigrationError": ".errors",
    "MigrationStatus": ".ops",
    "Money": ".money",
    "NewCar": ".models",
    "NotAuthenticatedError": ".errors",
    "NotFoundError": ".errors",
    "NotMigratedError": ".errors",
    "OutcomeUnknownError": ".errors",
    "Page": ".models",
    "PlatformState": ".ops",
    "PostgresNotFoundError": ".errors",
    "PostgresStartError": ".errors",
    "RollbackPlan": ".ops",
    "RollbackRefusedError": ".errors",
    "RollbackResult": ".ops",
    "SessionExpiredError": ".errors",
    "Settings": ".settings",
    "SignedUpload": ".models",
    "SortOrder": ".models",
    "StorageError": ".errors",
    "UnsupportedImageTypeError": ".errors",
    "User": ".models",
    "UserAlreadyExistsError": ".errors",
    "UserIdentity": ".models",
    "ValidationError": ".errors",
    "VerifyReport": ".ops",
    "WeakPasswordError": ".errors",
    "default_db_url": ".config",
    "load_local_config": ".config",
    "supabase_dir": ".config",
}

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "AdminBooking",
    "AsyncCarbook",
    "AsyncFileSessionStore",
    "AuditEntry",
    "AuthError",
    "AvailabilityEvent",
    "BackupMissingError",
    "Booking",
    "BookingEnded",
    "BookingError",
    "BookingNotYoursError",
    "BookingStatus",
    "Car",
    "CarAlreadyBookedError",
    "CarDeletion",
    "CarIsBookedError",
    "CarNotBookedError",
    "CarNotFoundError",
    "CarNotPublishedError",
    "CarUpdate",
    "CarUpdateFields",
    "Carbook",
    "CarbookConnectionError",
    "CarbookError",
    "Check",
    "Claims",
    "ConfigurationError",
    "ConflictError",
    "Database",
    "DatabaseError",
    "FileSessionStore",
    "ImageFile",
    "ImageTooLargeError",
    "InvalidCredentialsError",
    "InvalidTokenError",
    "LocalConfig",
    "MigrateResult",
    "Migration",
    "MigrationDriftError",
    "MigrationError",
    "MigrationStatus",
    "Money",
    "NewCar",
    "NotAuthenticatedError",
    "NotFoundError",
    "NotMigratedError",
    "OutcomeUnknownError",
    "Page",
    "PlatformState",
    "PostgresNotFoundError",
    "PostgresStartError",
    "RollbackPlan",
    "RollbackRefusedError",
    "RollbackResult",
    "SessionExpiredError",
    "Settings",
    "SignedUpload",
    "SortOrder",
    "StorageError",
    "UnsupportedImageTypeError",
    "User",
    "UserAlreadyExistsError",
    "UserIdentity",
    "ValidationError",
    "VerifyReport",
    "WeakPasswordError",
    "__version__",
    "default_db_url",
    "load_local_config",
    "supabase_dir",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'carbook_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
