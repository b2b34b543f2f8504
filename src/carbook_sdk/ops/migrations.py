"""Migrations: the platform bootstrap, the Supabase CLI's history table, migrate, status, seed.

Migration history is the Supabase CLI's own ``supabase_migrations.schema_migrations``,
so ``carbook db migrate`` and ``supabase migration up`` agree on what is applied.
"""

from __future__ import annotations

import difflib
import re
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import psycopg
from pydantic import Field

from ..errors import (
    BackupMissingError,
    ConfigurationError,
    MigrationDriftError,
    MigrationError,
    ValidationError,
)
from .backups import (
    ATOMIC_BOOKING_VERSION,
    RestoreResult,
    apply_backup,
    database_identity,
    default_backup_dir,
    find_backup,
    latest_stored_backup,
    mark_restored,
    mark_stored_restored,
    read_backup,
    rolled_back_before,
)
from .connection import Connection, Model
from .translate import translate_db_error, wrap_db_errors

__all__ = [
    "BOOTSTRAP_MARKER",
    "NO_TRANSACTION",
    "MigrateResult",
    "Migration",
    "MigrationStatus",
    "Migrations",
    "PlatformState",
    "bootstrap_sql",
]

BOOTSTRAP_MARKER = "carbook platform bootstrap 4"
_MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")


#: A migration's first line that asks for it to run outside the run's transaction.
NO_TRANSACTION = "-- carbook: no-transaction"
#: Statements PostgreSQL refuses inside a transaction block, and ones that would end the
#: run's transaction by accident (a COMMIT in a file would commit everything before it).
_TRANSACTION_BREAKERS = re.compile(
    r"(?im)\b(create\s+(?:unique\s+)?index\s+concurrently|drop\s+index\s+concurrently|"
    r"reindex\b[^;]*\bconcurrently|refresh\s+materialized\s+view\s+concurrently|vacuum|alter\s+system|"
    r"create\s+database|drop\s+database)\b|^\s*(begin|start\s+transaction|commit|end|rollback)\s*(?:work|transaction)?\s*;"
)


def _transaction_breaker(sql: str) -> str | None:
    """The first statement in ``sql`` that cannot run inside the run's transaction."""
    # Function bodies, strings and comments may say anything (a plpgsql body ends in `end;`).
    code = re.sub(r"\$(\w*)\$.*?\$\1\$", "''", sql, flags=re.S)
    code = re.sub(r"'(?:[^']|'')*'", "''", code)
    code = re.sub(r"--[^\n]*", "", code)
    m = _TRANSACTION_BREAKERS.search(code)
    if m is None:
        return None
    return " ".join((m.group(1) or m.group(2)).split()).upper()


def _statements(sql: str) -> list[str]:
    """A no-transaction migration's statements: split where a line ends with ``;``."""
    parts = re.split(r";[ \t]*(?:--[^\n]*)?\n", sql + "\n")
    return [p.strip() for p in parts if re.sub(r"--[^\n]*", "", p).strip()]


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

    @property
    def outside_transaction(self) -> bool:
        """Declared (its first line is ``-- carbook: no-transaction``) to run on its own."""
        first = self.read().lstrip().split("\n", 1)[0].strip().lower()
        return first == NO_TRANSACTION


class PlatformState(StrEnum):
    """What `ensure_platform` found and did."""

    APPLIED = "applied"  # the carbook bootstrap was (re)applied
    PRESENT = "present"  # the current carbook bootstrap was already there
    SUPABASE = "supabase"  # a real Supabase database: left alone


class MigrationStatus(Model):
    """Applied and pending migrations, and where history and files disagree (drift)."""

    applied: tuple[Migration, ...]
    pending: tuple[Migration, ...]
    #: Versions in the history with no file here (applied by something else).
    unknown: tuple[str, ...] = ()
    #: Applied files whose content differs from what the history says was applied.
    changed: tuple[Migration, ...] = ()
    #: For each changed file (by file name): a unified diff, as applied → as it is now.
    diffs: dict[str, str] = Field(default_factory=dict)
    platform_ready: bool = True

    @property
    def up_to_date(self) -> bool:
        """No migration is pending (drift aside)."""
        return not self.pending

    @property
    def drift(self) -> bool:
        return bool(self.unknown or self.changed)

    def drift_error(self) -> MigrationDriftError | None:
        """The error `migrate` raises over this drift, if there is drift."""
        if not self.drift:
            return None
        parts = [f"{v} is applied but has no migration file" for v in self.unknown]
        parts += [f"{m.filename} changed since it was applied" for m in self.changed]
        return MigrationDriftError(
            "the migration history does not match the migration files: " + "; ".join(parts),
            unknown=self.unknown,
            changed=tuple(m.filename for m in self.changed),
            hint="`carbook db status` shows what changed; restore the files as they were applied, "
            "record what is true with `carbook db repair --status applied|reverted VERSION`, "
            "or run `carbook db migrate --ignore-drift`",
        )


class MigrateResult(Model):
    applied: tuple[Migration, ...]
    platform: PlatformState
    #: The rollback backup put back while re-applying the migration it came from, if any.
    restored: RestoreResult | None = None
    #: Cars that existed when the booking migration was applied and got no backup: they
    #: are now available at the default price (0 for a new database).
    cars_without_backup: int = 0


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


def _diff(statements: list[str], m: Migration) -> str:
    """What changed in ``m`` since it was applied, as a unified diff (at most 60 lines)."""
    applied = "".join(statements) if len(statements) == 1 else ";\n".join(statements) + ";\n"
    lines = list(
        difflib.unified_diff(
            applied.splitlines(keepends=True),
            m.read().splitlines(keepends=True),
            fromfile=f"{m.filename} (as applied)",
            tofile=f"{m.filename} (now)",
        )
    )
    if len(lines) > 60:
        lines = [*lines[:60], f"… {len(lines) - 60} more line(s)\n"]
    return "".join(lines)


def _same_sql(statements: list[str], text: str) -> bool:
    """Whether history statements are this file's text: carbook stores the whole file as
    one statement, the Supabase CLI stores it split into statements."""
    if statements == [text]:
        return True
    return _SPACE_OR_SEMICOLON.sub("", "".join(statements)) == _SPACE_OR_SEMICOLON.sub("", text)


_SPACE_OR_SEMICOLON = re.compile(r"[\s;]+")


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
        try:
            conn.execute(bootstrap_sql())
        except psycopg.Error as exc:
            # A database refusing the schema, as a failing migration is: never "invalid input".
            raise MigrationError(
                f"the platform bootstrap failed: {translate_db_error(exc).message}; nothing of it was applied",
                migration="bootstrap",
                sqlstate=exc.sqlstate,
            ) from exc
        return PlatformState.APPLIED

    def ensure_platform(self) -> PlatformState:
        """Create roles, ``auth``, ``storage`` and the history table where they are missing.

        A real Supabase database (it has ``auth`` without carbook's marker) is left as
        it is; a database with the current bootstrap is skipped. Databases of one cluster
        may be bootstrapped at once: the cluster-wide roles tolerate a concurrent twin.

        Raises:
            MigrationError: the bootstrap failed; nothing of it was applied.
            CarbookConnectionError: the database cannot be reached.
        """
        with self.connect() as conn, wrap_db_errors(), self._locked(conn):
            return self._ensure_platform(conn)

    @staticmethod
    def _history(conn: psycopg.Connection[Any]) -> dict[str, list[str] | None]:
        """Applied version → the statements the history recorded for it."""
        if conn.execute("select to_regclass('supabase_migrations.schema_migrations')").fetchone() == (None,):
            return {}
        rows = conn.execute(
            "select version, statements from supabase_migrations.schema_migrations order by version"
        ).fetchall()
        return {v: st for v, st in rows}

    @classmethod
    def _applied(cls, conn: psycopg.Connection[Any]) -> set[str]:
        return set(cls._history(conn))

    def _status(self, conn: psycopg.Connection[Any], files: list[Migration]) -> MigrationStatus:
        history = self._history(conn)
        known = {m.version for m in files}
        # A history row without statements (`supabase migration repair`) says nothing
        # about content: it is not counted as a change.
        changed = tuple(
            m for m in files if history.get(m.version) and not _same_sql(history[m.version] or [], m.read())
        )
        return MigrationStatus(
            applied=tuple(m for m in files if m.version in history),
            pending=tuple(m for m in files if m.version not in history),
            unknown=tuple(v for v in history if v not in known),
            changed=changed,
            diffs={m.filename: _diff(history[m.version] or [], m) for m in changed},
            platform_ready=self._platform_state(conn) is not None,
        )

    def repair(self, version: str, status: Literal["applied", "reverted"]) -> str:
        """Mark ``version`` in the migration history without running anything, as
        ``supabase migration repair --status applied|reverted`` does: ``applied`` records
        the local file as applied (its current text becomes the applied text, so a file
        changed on purpose is no longer drift); ``reverted`` removes the version from the
        history (a later `migrate` applies its file again). Returns what was done.

        Raises:
            ValidationError: not a 14-digit version; ``applied`` with no such file;
                ``reverted`` for a version the history does not hold; an unknown status.
            CarbookConnectionError: the database cannot be reached.
        """
        if status not in ("applied", "reverted"):
            raise ValidationError(f"status must be applied or reverted, not {status!r}")
        if not re.fullmatch(r"\d{14}", version or ""):
            raise ValidationError(f"{version!r} is not a migration version (14 digits, as in its file name)")
        files = {m.version: m for m in self.migrations()}
        with self.connect() as conn, wrap_db_errors(), self._locked(conn):
            self._ensure_platform(conn)
            history = self._history(conn)
            if status == "reverted":
                if version not in history:
                    raise ValidationError(f"{version} is not in the migration history: nothing to revert")
                conn.execute(
                    "delete from supabase_migrations.schema_migrations where version = %s", (version,)
                )
                return f"{version} marked reverted: removed from the migration history (its objects are untouched)"
            m = files.get(version)
            if m is None:
                raise ValidationError(
                    f"no migration file {version}_*.sql in {self.project_dir / 'migrations'}: "
                    "only a local file can be marked applied"
                )
            conn.execute(
                """insert into supabase_migrations.schema_migrations (version, statements, name)
                   values (%s, %s, %s)
                   on conflict (version) do update set statements = excluded.statements, name = excluded.name""",
                (m.version, [m.read()], m.name),
            )
            was = "recorded again as" if version in history else "marked"
            return f"{m.filename} {was} applied: nothing was run"

    def status(self) -> MigrationStatus:
        """Which migrations are applied, which are pending, and any drift: applied
        versions without a file, and files changed since they were applied.

        Raises:
            CarbookConnectionError: the database cannot be reached.
        """
        files = self.migrations()
        with self.connect() as conn, wrap_db_errors(), conn.transaction():
            return self._status(conn, files)

    def migrate(
        self, *, ignore_drift: bool = False, restore: bool = True, backup_dir: Path | None = None
    ) -> MigrateResult:
        """Apply the platform bootstrap if needed, then every pending migration in order.

        The whole run is one transaction, under a transaction-scoped lock: the bootstrap,
        every pending migration with its history row, and the restore of a rollback's
        backup. Killed or failing at any moment, it leaves the schema and its data exactly
        as they were before the run; otherwise everything is applied. A concurrent twin
        waits, then applies nothing twice. PostgREST is told to reload its schema once,
        at the commit.

        A file with what PostgreSQL cannot run in a transaction (``CREATE INDEX
        CONCURRENTLY``, ``VACUUM``, …) or what would end it (``COMMIT``) is refused before
        anything runs, unless its first line declares ``-- carbook: no-transaction``: then
        what comes before it commits, it runs on its own, statement by statement, and the
        rest follows in a new transaction.

        Re-applying the atomic-booking migration after a rollback puts the rollback's
        backup back: the newest copy the database keeps of it (the rollback wrote it in
        its own transaction), else — for a backup taken before the database kept copies —
        the latest file of this database in ``backup_dir``; it is marked restored in the
        same transaction. If the migration was rolled back and no backup is left, the
        run is refused rather than freeing every booked car (``restore=False`` re-applies
        it without one). The result says what came back and which cars did not (a car
        gone, a user deleted), or how many existing cars got no backup at all.

        Args:
            ignore_drift: migrate even though the history and the files disagree.
            restore: put a rollback backup back (False: never, and never refuse for lack of one).
            backup_dir: where older rollback backup files are; default ``.carbook/backups``
                at the project root.

        Raises:
            MigrationDriftError: the history and the files disagree and ``ignore_drift`` is false.
            MigrationError: a migration failed (names the file, line and reason); nothing
                of the run was applied.
            BackupMissingError: the booking migration was rolled back before and no backup
                of its data is left; nothing was applied.
            CarbookConnectionError: the database cannot be reached.
        """
        files = self.migrations()
        backups = Path(backup_dir or default_backup_dir())
        done: list[Migration] = []
        restored: RestoreResult | None = None
        restored_file: Path | None = None
        cars_without_backup = 0
        with self.connect() as conn:
            first = True
            while True:
                outside: Migration | None = None
                applied_now = False
                with wrap_db_errors(), self._locked(conn):
                    if first:
                        drift = self._status(conn, files).drift_error()
                        if drift is not None and not ignore_drift:
                            raise drift
                        platform = self._ensure_platform(conn)
                        first = False
                    applied = self._applied(conn)
                    for m in files:
                        if m.version in applied:
                            continue
                        if m.outside_transaction:
                            outside = m  # after this transaction commits, on its own
                            break
                        sql = m.read()
                        breaker = _transaction_breaker(sql)
                        if breaker is not None:
                            raise MigrationError(
                                f"{m.filename} cannot run inside the migration's transaction "
                                f"({breaker}); nothing of this run was applied",
                                migration=m.filename,
                                hint=f"make its first line `{NO_TRANSACTION}` to run it on its own, "
                                "outside the transaction, statement by statement",
                            )
                        try:
                            conn.execute(sql)  # file text, not user input
                        except psycopg.Error as exc:
                            raise self._failed(m, sql, exc) from exc
                        self._record(conn, m, sql)
                        if m.version == ATOMIC_BOOKING_VERSION:
                            restored, restored_file, cars_without_backup = self._restore_on_reapply(
                                conn, m, backups, restore
                            )
                        done.append(m)
                        applied_now = True
                    if applied_now:
                        # Delivered at the commit, once per transaction: one schema-cache
                        # reload for PostgREST when everything is there.
                        conn.execute("notify pgrst, 'reload schema'")
                if outside is None:
                    break
                # Declared by the migration: what cannot run in a transaction (CREATE INDEX
                # CONCURRENTLY, …) runs alone, after what came before it has committed.
                self._run_outside(conn, outside)
                done.append(outside)
        if restored is not None and restored_file is not None and restored_file.exists():
            # For people reading the folder: the database already says it is restored.
            mark_restored(restored_file, restored)
        return MigrateResult(
            applied=tuple(done), platform=platform, restored=restored, cars_without_backup=cars_without_backup
        )

    @staticmethod
    def _record(conn: psycopg.Connection[Any], m: Migration, sql: str) -> None:
        conn.execute(
            """insert into supabase_migrations.schema_migrations (version, statements, name)
               values (%s, %s, %s)""",
            (m.version, [sql], m.name),
        )

    def _run_outside(self, conn: psycopg.Connection[Any], m: Migration) -> None:
        """A migration declared ``-- carbook: no-transaction``: each statement on its own (in
        autocommit), then its history row. Stopped part-way, the statements run so far stay;
        the version is recorded only once all of them ran, so a re-run starts it again."""
        sql = m.read()
        with wrap_db_errors():
            for statement in _statements(sql):
                try:
                    conn.execute(statement)
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"{m.filename} failed: {translate_db_error(exc).message}; it runs outside a "
                        "transaction, so its statements before this one stay applied",
                        migration=m.filename,
                        sqlstate=exc.sqlstate,
                    ) from exc
            self._record(conn, m, sql)
            conn.execute("notify pgrst, 'reload schema'")

    def _restore_on_reapply(
        self, conn: psycopg.Connection[Any], m: Migration, backups: Path, restore: bool
    ) -> tuple[RestoreResult | None, Path | None, int]:
        """Inside the run's transaction, right after ``m`` (the booking migration) was
        applied: (what was restored, its file, how many cars got no backup)."""
        row = conn.execute("select count(*) from public.cars").fetchone()
        cars = int(row[0]) if row else 0
        if not restore:
            return None, None, cars
        stored = latest_stored_backup(conn, m.version)
        if stored is not None:
            result = self._restore_in(conn, m, stored.doc, stored.file, "database")
            mark_stored_restored(conn, result, backup_id=stored.id)
            return result, stored.file, 0
        legacy = find_backup(backups, m.version, database_identity(conn))
        if legacy is not None:
            result = self._restore_in(conn, m, read_backup(legacy), legacy, "file")
            return result, legacy, 0
        if cars and rolled_back_before(conn, m.version):
            raise BackupMissingError(
                f"{m.filename} was rolled back before, and no backup of its bookings and prices is "
                f"left to put back: applying it would make all {cars} car(s) available at the default "
                "price; nothing was applied",
                migration=m.filename,
                hint="put a backup back later with `carbook db restore BACKUP`, after "
                "`carbook db migrate --no-restore`, if freeing every car is what you mean",
            )
        return None, None, cars

    @staticmethod
    def _restore_in(
        conn: psycopg.Connection[Any],
        m: Migration,
        doc: dict[str, Any],
        path: Path | None,
        source: Literal["database", "file"],
    ) -> RestoreResult:
        """Put a backup back inside the transaction applying ``m``; if it cannot go back
        at all, nothing of the run is applied either: cars stay unbookable, not free."""
        try:
            with conn.transaction():  # a savepoint: its error is the backup's, not the file's
                return apply_backup(conn, doc, path=path, source=source)
        except psycopg.Error as exc:
            where = f"the rollback backup {path}" if path else "the rollback backup"
            raise MigrationError(
                f"{m.filename} was not applied: {where} cannot be put back: "
                f"{translate_db_error(exc).message}; nothing was applied",
                migration=m.filename,
                sqlstate=exc.sqlstate,
                hint="run `carbook db migrate --no-restore`, then `carbook db restore BACKUP` once it is fixed",
            ) from exc

    @staticmethod
    def _failed(m: Migration, sql: str, exc: psycopg.Error) -> MigrationError:
        err = translate_db_error(exc)
        line = _line_of(sql, int(exc.diag.statement_position or 0) or None)
        where = f" at line {line}" if line else ""
        return MigrationError(
            f"{m.filename} failed{where}: {err.message}; nothing of this run was applied",
            migration=m.filename,
            sqlstate=exc.sqlstate,
            hint=err.hint,
            detail=err.detail,
        )

    def seed(self) -> None:
        """Load ``supabase/seed.sql`` (demo data) in one transaction.

        Raises:
            DatabaseError: the seed failed; nothing of it was loaded.
        """
        sql = (self.project_dir / "seed.sql").read_text(encoding="utf-8")
        with self.connect() as conn, wrap_db_errors(), conn.transaction():
            conn.execute(sql)
