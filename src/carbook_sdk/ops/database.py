"""`Database`: every ops call over one PostgreSQL connection string.

Works on the local stack and on a hosted Supabase project alike (``SUPABASE_DB_URL``),
directly or through a transaction pooler (Supavisor on port 6543, PgBouncer).
"""

from __future__ import annotations

from .rollback import Rollback
from .verify import Verification

__all__ = ["Database"]


class Database(Verification, Rollback):
    """Schema operations over a PostgreSQL connection, direct or through a transaction
    pooler: migrate, status, seed, verify, lint, rollback and restore.

    Args:
        url: a libpq URL; defaults to ``CARBOOK_DB_URL``, ``SUPABASE_DB_URL``, then the local stack's.
        api_url: the project URL in force; a hosted one with no database URL is refused
            rather than paired with the local stack's database. Default: ``CARBOOK_URL``,
            ``SUPABASE_URL``.
        project_dir: the ``supabase/`` folder with migrations, rollbacks and seed;
            defaults to carbook's own.
        connect_timeout: seconds to wait for a connection.

    Raises:
        ConfigurationError: no database URL for a hosted project, or not a PostgreSQL URL.
    """
