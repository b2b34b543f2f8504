"""`Database`: every ops call over one direct PostgreSQL connection string.

Works on the local stack and on a hosted Supabase project alike (``SUPABASE_DB_URL``).
"""

from __future__ import annotations

from .rollback import Rollback
from .verify import Verification

__all__ = ["Database"]


class Database(Verification, Rollback):
    """Schema operations over a direct PostgreSQL connection: migrate, status, seed,
    verify, lint, rollback and restore.

    Args:
        url: a libpq URL; defaults to ``CARBOOK_DB_URL``, ``SUPABASE_DB_URL``, then the local stack's.
        project_dir: the ``supabase/`` folder with migrations, rollbacks and seed;
            defaults to carbook's own.
        connect_timeout: seconds to wait for a connection.
    """
