"""Rendering shared by every command: consoles, JSON, errors and their exit codes."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from carbook_sdk.errors import (
    AccessDeniedError,
    CarbookConnectionError,
    CarbookError,
    ConfigurationError,
    DatabaseError,
    RollbackRefusedError,
    ValidationError,
)

console = Console(highlight=False, soft_wrap=False)
err_console = Console(stderr=True, highlight=False)

#: Exit codes by error family (documented in the README). The first match wins.
EXIT_CODES: tuple[tuple[type[CarbookError], int], ...] = (
    (ValidationError, 3),
    (CarbookConnectionError, 4),
    (AccessDeniedError, 5),
    (RollbackRefusedError, 9),
    (DatabaseError, 8),
    (ConfigurationError, 10),
)
#: `db verify` found a failing check.
EXIT_CHECKS_FAILED = 1


def exit_code_for(exc: CarbookError) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return 1


def print_json(data: Any) -> None:
    """One JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_error(exc: CarbookError) -> None:
    err_console.print(f"[bold red]Error:[/] {exc}", markup=True, soft_wrap=True)
