"""The `carbook` command line: parses, calls carbook_sdk, renders with Rich.

Needs the ``cli`` extra (Typer, Rich, psycopg): ``pip install "carbook[cli]"``. Without it,
the ``carbook`` command says so in one line instead of a traceback.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

__all__ = ["app", "main"]

#: Import names of what the ``cli`` extra installs.
REQUIRES = ("typer", "rich", "psycopg")


def main() -> None:
    """The ``carbook`` console script."""
    missing = [name for name in REQUIRES if importlib.util.find_spec(name) is None]
    if missing:
        sys.stderr.write(
            f'Error: the carbook command needs {", ".join(missing)} (pip install "carbook[cli]")\n'
        )
        raise SystemExit(10)  # a configuration problem, as the exit-code table says
    from .main import main as run

    run()


def __getattr__(name: str) -> Any:
    if name == "app":
        from .main import app

        return app
    raise AttributeError(f"module 'carbook_cli' has no attribute {name!r}")
