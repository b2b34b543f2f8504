"""The exit-code table: one row per CarbookError family, as docs/cli.md documents it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import carbook_sdk.errors as errors_module
from carbook_cli.output import exit_code_for
from carbook_sdk.errors import CarbookError
from carbook_sdk.importer import ImportFileError

ROOT = Path(__file__).resolve().parents[2]

#: Every CarbookError class → the exit code a person gets for it.
EXPECTED: dict[str, int] = {
    "CarbookError": 1,
    "StorageError": 1,
    "PostgresStartError": 1,
    "BookingError": 1,
    "ValidationError": 3,
    "ImageTooLargeError": 3,
    "UnsupportedImageTypeError": 3,
    "WeakPasswordError": 3,
    "ImportFileError": 3,
    "CarbookConnectionError": 4,
    "OutcomeUnknownError": 4,
    "BookingNotYoursError": 5,
    "AccessDeniedError": 5,
    "NotFoundError": 6,
    "CarNotFoundError": 6,
    "CarNotPublishedError": 6,
    "CarAlreadyBookedError": 7,
    "DatabaseError": 8,
    "MigrationError": 8,
    "MigrationDriftError": 8,
    "BackupMissingError": 8,
    "NotMigratedError": 8,
    "RollbackRefusedError": 9,
    "ConfigurationError": 10,
    "PostgresNotFoundError": 10,
    "ConflictError": 13,
    "UserAlreadyExistsError": 13,
    "CarNotBookedError": 13,
    "CarIsBookedError": 13,
    "InvalidTokenError": 12,
    "AuthError": 12,
    "NotAuthenticatedError": 12,
    "InvalidCredentialsError": 12,
    "SessionExpiredError": 12,
}


def _all_error_classes() -> list[type[CarbookError]]:
    found = [
        cls
        for _, cls in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(cls, CarbookError) and cls.__module__ == errors_module.__name__
    ]
    return [*found, ImportFileError]


def test_every_error_class_has_a_row() -> None:
    names = {cls.__name__ for cls in _all_error_classes()}
    assert names == set(EXPECTED), f"add a row for: {names ^ set(EXPECTED)}"


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.__name__)
def test_exit_code_per_family(cls: type[CarbookError]) -> None:
    exc = cls.__new__(cls)
    CarbookError.__init__(exc, "x")
    assert exit_code_for(exc) == EXPECTED[cls.__name__]


def test_the_cli_docs_document_every_code_used() -> None:
    table = (ROOT / "docs" / "cli.md").read_text()
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", table, flags=re.M)}
    assert set(EXPECTED.values()) <= documented


def test_every_exit_code_has_a_meaning() -> None:
    """docs/cli.md's table is generated from EXIT_MEANINGS: each code the CLI uses is in it."""
    from carbook_cli import output

    used = {code for _, code in output.EXIT_CODES} | {
        0,
        2,
        output.EXIT_FAILED,
        output.EXIT_STACK_DOWN,
        output.EXIT_ALREADY_BOOKED,
    }
    meant = {int(code) for key in output.EXIT_MEANINGS for code in key.split(", ")}
    assert used - meant == set()
    assert {130, 143} <= meant
