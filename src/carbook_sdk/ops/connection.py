"""The connection every ops call goes through, and what the ops modules share.

Every ops call is safe behind a transaction pooler (Supabase's Supavisor on port 6543,
PgBouncer in transaction mode), which may hand each transaction to a different server
connection: ops keeps no session state. Locks are transaction-scoped and taken inside
the transaction that does the work, settings are transaction-local, temporary objects
live and die within one transaction, and psycopg never prepares statements.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel, ConfigDict

from ..config import resolve_db_url, supabase_dir
from ..errors import ConfigurationError, ValidationError
from .translate import wrap_db_errors

__all__ = ["Connection", "Target"]

# pg_advisory_xact_lock key shared by every carbook process changing the schema.
_SCHEMA_LOCK = 0x6361_7262_6F6F_6B  # "carbook"


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Target(Model):
    """The database an ops call acts on, as a person should see it: never the password."""

    host: str
    port: str
    database: str
    user: str
    #: Where the URL came from: ``--db-url``, ``CARBOOK_DB_URL``, ``SUPABASE_DB_URL``, ``local stack``.
    source: str

    @classmethod
    def from_url(cls, url: str, source: str) -> Target:
        """Raises:
        ValidationError: ``url`` came as a flag (``--db-url``) and is not a PostgreSQL URL
            or connection string: a bad value, like any other.
        ConfigurationError: the same from the environment or settings."""
        try:
            parts = conninfo_to_dict(url)
        except psycopg.Error:
            # psycopg's message quotes the string, which may hold the password.
            kind = ValidationError if source.startswith("--") else ConfigurationError
            raise kind(
                f"the database URL from {source} is not a PostgreSQL URL",
                hint="expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
            ) from None
        # What libpq would use for a part the URL leaves out.
        user = str(parts.get("user") or os.environ.get("PGUSER") or getpass.getuser())
        return cls(
            host=str(parts.get("host") or os.environ.get("PGHOST") or "localhost"),
            port=str(parts.get("port") or os.environ.get("PGPORT") or 5432),
            database=str(parts.get("dbname") or os.environ.get("PGDATABASE") or user),
            user=user,
            source=source,
        )

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


class Connection:
    """Schema operations over a direct PostgreSQL connection (or a transaction pooler).

    Args:
        url: a libpq URL; defaults to ``CARBOOK_DB_URL``, ``SUPABASE_DB_URL``, then the
            local stack's.
        api_url: the project URL in force; a hosted one with no database URL is refused
            rather than paired with the local stack's database. Default: ``CARBOOK_URL``,
            ``SUPABASE_URL``.
        project_dir: the ``supabase/`` folder with migrations, rollbacks and seed;
            defaults to carbook's own.
        connect_timeout: seconds to wait for a connection.

    Raises:
        ConfigurationError: no database URL for a hosted project, or not a PostgreSQL URL.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_url: str | None = None,
        project_dir: Path | None = None,
        connect_timeout: int = 10,
    ) -> None:
        self.url, source = resolve_db_url(url, api_url=api_url)
        #: The database this object acts on (host, port, database, user; no password).
        self.target = Target.from_url(self.url, source)
        self.project_dir = project_dir or supabase_dir()
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:
        return f"Database(url={re.sub(r':[^:@/]*@', ':***@', self.url)!r})"

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Any]]:
        """An autocommit connection, closed on exit; errors come out as carbook errors.

        Raises:
            CarbookConnectionError: the database cannot be reached.
        """
        with wrap_db_errors(self.url):
            # prepare_threshold=None: a statement psycopg prepared on one server connection
            # does not exist on the next one a pooler hands out.
            conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=self.connect_timeout, prepare_threshold=None
            )
            try:
                yield conn
            finally:
                conn.close()

    @staticmethod
    @contextmanager
    def _locked(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
        """A transaction holding the schema lock: one migrate/rollback step at a time.

        The lock is transaction-scoped, so it is held on the server connection doing the
        work and ends with it, committed or not, whatever a pooler does in between.
        """
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            yield conn
