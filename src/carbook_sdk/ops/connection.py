"""The connection every ops call goes through, and what the ops modules share."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict

from ..config import default_db_url, supabase_dir
from .translate import wrap_db_errors

__all__ = ["Connection"]

# pg_advisory_lock key shared by every carbook process changing the schema.
_SCHEMA_LOCK = 0x6361_7262_6F6F_6B  # "carbook"


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Connection:
    """Schema operations over a direct PostgreSQL connection.

    Args:
        url: a libpq URL; defaults to ``SUPABASE_DB_URL``, then the local stack's.
        project_dir: the ``supabase/`` folder with migrations, rollbacks and seed;
            defaults to carbook's own.
        connect_timeout: seconds to wait for a connection.
    """

    def __init__(
        self, url: str | None = None, *, project_dir: Path | None = None, connect_timeout: int = 10
    ) -> None:
        self.url = default_db_url(url)
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
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout)
            try:
                yield conn
            finally:
                conn.close()

    @contextmanager
    def _schema_lock(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection holding the schema lock: one migrate/rollback at a time."""
        with self.connect() as conn:
            conn.execute("select pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
            try:
                yield conn
            finally:
                if not conn.closed:
                    conn.execute("select pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
