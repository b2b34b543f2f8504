"""Factories for tests: the stack helpers of `carbook_stack.testing` (shared with the
benchmarks), and the `carbook` command run from a folder as a person would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from carbook_stack.testing import PASSWORD, make_cars, make_users, stack_db, temporary_stack

__all__ = ["PASSWORD", "carbook_in", "make_cars", "make_users", "stack_db", "temporary_stack"]


def carbook_in(folder: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """The installed ``carbook`` command run as a person would, from ``folder``."""
    return subprocess.run(
        [sys.executable, "-m", "carbook_cli", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )
