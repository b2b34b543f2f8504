"""Migrations: the platform bootstrap, the Supabase CLI's history table, migrate, status, seed.

Migration history is the Supabase CLI's own ``supabase_migrations.schema_migrations``,
so ``carbook db migrate`` and ``supabase migration up`` agree on what is applied.
"""

from __future__ import annotations

import re
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg

from ..errors import ConfigurationError, MigrationError
from .connection import Connection, Model
from .translate import translate_db_error, wrap_db_errors

__all__ = [
    "BOOTSTRAP_MARKER",
    "MigrateResult",
    "Migration",
    "MigrationStatus",
    "Migrations",
    "PlatformState",
    "bootstrap_sql",
]

BOOTSTRAP_MARKER = "carbook platform bootstrap 1"
_MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")


class Migration(Model):
    """A migration file in ``supabase/migrations``."""

    version: str
    name: str
    path: Path

    @property
    def filename(self) -> str:
        return self.path.name

    def read(self) -> str:
        return self.path.read_text(encoding="utf-8")


class PlatformState(StrEnum):
    """What `ensure_platform` found and did."""

    APPLIED = "applied"  # the carbook bootstrap was (re)applied
    PRESENT = "present"  # the current carbook bootstrap was already there
    SUPABASE = "supabase"  # a real Supabase database: left alone


class MigrationStatus(Model):
    """Applied and pending migrations."""

    applied: tuple[Migration, ...]
    pending: tuple[Migration, ...]
    #: Versions in the history with no file here (applied by something else).
    unknown: tuple[str, ...] = ()
    platform_ready: bool = True

    @property
    def up_to_date(self) -> bool:
        return not self.pending


class MigrateResult(Model):
    applied: tuple[Migration, ...]
    platform: PlatformState


def _migration_files(folder: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if not m:
            raise ConfigurationError(
                f"migration file name {path.name!r} is not <14-digit timestamp>_<name>.sql",
                hint=f"rename it in {folder}",
            )
        found.append(Migration(version=m["version"], name=m["name"], path=path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ConfigurationError(f"two migration files in {folder} share a version")
    return found


def _line_of(sql: str, position: int | None) -> int | None:
    if not position:
        return None
    return sql.count("\n", 0, position - 1) + 1


def bootstrap_sql() -> str:
    return resources.files("carbook_sdk").joinpath("ops/sql/bootstrap.sql").read_text(encoding="utf-8")


class Migrations(Connection):
    """Migrate, status and seed."""

    def migrations(self) -> list[Migration]:
        """The migration files, in the order they apply.

        Raises:
            ConfigurationError: a file name is not ``<14 digits>_<name>.sql``.
        """
        return _migration_files(self.project_dir / "migrations")

    @staticmethod
    def _platform_state(conn: psycopg.Connection[Any]) -> PlatformState | None:
        row = conn.execute(
            """select to_regclass('auth.users') is not null,
                      to_regclass('supabase_migrations.schema_migrations') is not null,
                      obj_description(to_regnamespace('supabase_migrations'), 'pg_namespace')"""
        ).fetchone()
        assert row is not None
        has_auth, has_history, marker = row
        if marker == BOOTSTRAP_MARKER and has_auth and has_history:
            return PlatformState.PRESENT
        if has_auth and not (marker or "").startswith("carbook platform bootstrap"):
            return PlatformState.SUPABASE
        return None

    def _ensure_platform(self, conn: psycopg.Connection[Any]) -> PlatformState:
        state = self._platform_state(conn)
        if state is PlatformState.SUPABASE:
            # Supabase has no history table until the first `supabase migration up`.
            conn.execute(
                """create schema if not exists supabase_migrations;
                   create table if not exists supabase_migrations.schema_migrations (
                     version text primary key, statements text[], name text)"""
            )
            return state
        if state is PlatformState.PRESENT:
            return state
        with conn.transaction():
            conn.execute(bootstrap_sql())
        return PlatformState.APPLIED

    def ensure_platform(self) -> PlatformState:
        """Create roles, ``auth``, ``storage`` and the history table where they are missing.

        A real Supabase database (it has ``auth`` without carbook's marker) is left as
        it is; a database with the current bootstrap is skipped.
        """
        with self._schema_lock() as conn:
            return self._ensure_platform(conn)

    @staticmethod
    def _applied(conn: psycopg.Connection[Any]) -> dict[str, str | None]:
        if conn.execute("select to_regclass('supabase_migrations.schema_migrations')").fetchone() == (None,):
            return {}
        rows = conn.execute(
            "select version, name from supabase_migrations.schema_migrations order by version"
        ).fetchall()
        return {v: n for v, n in rows}

    def status(self) -> MigrationStatus:
        """Which migrations are applied and which are pending.

        Raises:
            CarbookConnectionError: the database cannot be reached.
        """
        files = self.migrations()
        with self.connect() as conn:
            applied = self._applied(conn)
            ready = self._platform_state(conn) is not None
        known = {m.version for m in files}
        return MigrationStatus(
            applied=tuple(m for m in files if m.version in applied),
            pending=tuple(m for m in files if m.version not in applied),
            unknown=tuple(v for v in applied if v not in known),
            platform_ready=ready,
        )

    def migrate(self) -> MigrateResult:
        """Apply the platform bootstrap if needed, then every pending migration in order.

        Each migration runs in its own transaction together with its history row: a
        failing file leaves schema and history exactly as they were, and stops the run.

        Raises:
            MigrationError: a migration failed (names the file, line and reason).
            CarbookConnectionError: the database cannot be reached.
        """
        files = self.migrations()
        done: list[Migration] = []
        with self._schema_lock() as conn:
            platform = self._ensure_platform(conn)
            applied = self._applied(conn)
            for m in files:
                if m.version in applied:
                    continue
                sql = m.read()
                try:
                    with conn.transaction():
                        conn.execute(sql)  # file text, not user input
                        conn.execute(
                            """insert into supabase_migrations.schema_migrations (version, statements, name)
                               values (%s, %s, %s)""",
                            (m.version, [sql], m.name),
                        )
                except psycopg.Error as exc:
                    err = translate_db_error(exc)
                    line = _line_of(sql, int(exc.diag.statement_position or 0) or None)
                    where = f" at line {line}" if line else ""
                    raise MigrationError(
                        f"{m.filename} failed{where}: {err.message}; nothing of it was applied",
                        migration=m.filename,
                        sqlstate=exc.sqlstate,
                        hint=err.hint,
                        detail=err.detail,
                    ) from exc
                done.append(m)
        return MigrateResult(applied=tuple(done), platform=platform)

    def seed(self) -> None:
        """Load ``supabase/seed.sql`` (demo data) in one transaction.

        Raises:
            DatabaseError: the seed failed; nothing of it was loaded.
        """
        sql = (self.project_dir / "seed.sql").read_text(encoding="utf-8")
        with self.connect() as conn, wrap_db_errors(), conn.transaction():
            conn.execute(sql)
