"""Operations on the database itself: migrate, status, verify, rollback, seed.

Works over a direct PostgreSQL connection (``SUPABASE_DB_URL``), on the local stack
and on a hosted Supabase project alike. Migration history is the Supabase CLI's own
``supabase_migrations.schema_migrations``, so ``carbook db migrate`` and
``supabase migration up`` agree on what is applied.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict

from .config import default_db_url, supabase_dir
from .errors import (
    CarbookError,
    ConfigurationError,
    MigrationError,
    NotMigratedError,
    RollbackRefusedError,
    ValidationError,
    translate_db_error,
    wrap_db_errors,
)

if TYPE_CHECKING:
    from .lint import LintReport

__all__ = [
    "ATOMIC_BOOKING_VERSION",
    "Check",
    "Database",
    "MigrateResult",
    "Migration",
    "MigrationStatus",
    "PlatformState",
    "RestoreResult",
    "RollbackPlan",
    "RollbackResult",
    "VerifyReport",
]

#: The migration that `rollback` undoes.
ATOMIC_BOOKING_VERSION = "20250916010000"
ROLLBACK_FILE = "20250916010001_rollback_atomic_booking_implementation.sql"
BOOTSTRAP_MARKER = "carbook platform bootstrap 1"
BACKUP_FORMAT = "carbook.rollback-backup"
#: The columns the rollback drops, and so the ones its backup keeps.
BOOKING_COLUMNS = ("booking_status", "booked_by", "booked_at", "price_in_paise", "currency")

# pg_advisory_lock key shared by every carbook process changing the schema.
_SCHEMA_LOCK = 0x6361_7262_6F6F_6B  # "carbook"
_MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Migration(_Model):
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


class MigrationStatus(_Model):
    """Applied and pending migrations."""

    applied: tuple[Migration, ...]
    pending: tuple[Migration, ...]
    #: Versions in the history with no file here (applied by something else).
    unknown: tuple[str, ...] = ()
    platform_ready: bool = True

    @property
    def up_to_date(self) -> bool:
        return not self.pending


class MigrateResult(_Model):
    applied: tuple[Migration, ...]
    platform: PlatformState


class Check(_Model):
    """One verified element of the schema."""

    name: str
    ok: bool
    detail: str


class VerifyReport(_Model):
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)


class RollbackPlan(_Model):
    """What `rollback` would do, and to how much data."""

    version: str
    applied: bool
    cars: int
    booked_cars: int
    rollback_file: Path
    actions: tuple[str, ...]

    def refusal(self, force: bool) -> CarbookError | None:
        """The error `rollback` would raise for this plan, if any (so a caller can stop
        before asking anyone to confirm)."""
        if not self.applied:
            return NotMigratedError(f"migration {self.version} is not applied: nothing to roll back")
        if self.booked_cars and not force:
            return RollbackRefusedError(
                f"{self.booked_cars} car(s) are booked; rolling back would drop their "
                "bookings. Use force to back them up and roll back anyway.",
                booked_cars=self.booked_cars,
            )
        return None


class RestoreResult(_Model):
    """What `restore_backup` put back."""

    cars: int
    bookings: int
    prices: int


class RollbackResult(_Model):
    plan: RollbackPlan
    backup_path: Path
    backed_up_cars: int


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


def _bootstrap_sql() -> str:
    return resources.files("carbook_sdk").joinpath("sql/bootstrap.sql").read_text(encoding="utf-8")


class Database:
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

    # Migrations --------------------------------------------------------------------
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
            conn.execute(_bootstrap_sql())
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

    # Verification ------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        """Check every element of the atomic-booking structure, each by name.

        Runs ``supabase/tests/verify_database_structure.sql`` in report mode, plus
        one check per migration file that it is recorded as applied.

        Raises:
            CarbookConnectionError: the database cannot be reached.
        """
        sql = (self.project_dir / "tests" / "verify_database_structure.sql").read_text("utf-8")
        files = self.migrations()
        with self.connect() as conn, wrap_db_errors():
            applied = self._applied(conn)
            history = [
                Check(
                    name=f"migration:{m.version}_{m.name}",
                    ok=m.version in applied,
                    detail="applied" if m.version in applied else "not applied",
                )
                for m in files
            ]
            missing = [
                s
                for s in ("auth.users", "storage.buckets", "storage.objects")
                if conn.execute("select to_regclass(%s)", (s,)).fetchone() == (None,)
            ]
            if missing:
                return VerifyReport(
                    checks=(
                        *history,
                        Check(name="platform", ok=False, detail="missing " + ", ".join(missing)),
                    )
                )
            conn.execute("set carbook.verify_mode = 'report'")
            conn.execute(sql)
            rows = conn.execute("select name, ok, detail from pg_temp.carbook_checks()").fetchall()
        return VerifyReport(
            checks=(*history, *(Check(name=n, ok=bool(ok), detail=d or "") for n, ok, d in rows))
        )

    def lint(self, exposed_schemas: tuple[str, ...] = ("public",)) -> LintReport:
        """Run the Supabase-style security and performance lints on the live schema.

        ``exposed_schemas`` are the schemas the API serves (``[api].schemas``); they are
        set as ``pgrst.db_schemas`` for the session, as splinter expects.

        Raises:
            CarbookConnectionError: the database cannot be reached.
        """
        from .lint import INTENDED, LINTS, Finding, LintReport

        findings: list[Finding] = []
        with self.connect() as conn, wrap_db_errors():
            conn.execute("select set_config('pgrst.db_schemas', %s, false)", (",".join(exposed_schemas),))
            for lint in LINTS:
                for obj, detail in conn.execute(lint.sql).fetchall():
                    findings.append(
                        Finding(
                            lint=lint.name,
                            level=lint.level,
                            title=lint.title,
                            object=obj,
                            detail=detail,
                            intended=INTENDED.get((lint.name, obj)),
                        )
                    )
        return LintReport(exposed_schemas=exposed_schemas, findings=tuple(findings))

    # Rollback ----------------------------------------------------------------------
    def _rollback_path(self) -> Path:
        return self.project_dir / "rollbacks" / ROLLBACK_FILE

    def _plan(self, conn: psycopg.Connection[Any]) -> RollbackPlan:
        applied = ATOMIC_BOOKING_VERSION in self._applied(conn)
        has_columns = conn.execute(
            """select count(*) = 5 from pg_attribute
                where attrelid = to_regclass('public.cars') and attname = any(%s) and not attisdropped""",
            (list(BOOKING_COLUMNS),),
        ).fetchone() == (True,)
        cars = booked = 0
        if conn.execute("select to_regclass('public.cars')").fetchone() != (None,):
            row = conn.execute("select count(*) from public.cars").fetchone()
            cars = int(row[0]) if row else 0
        if has_columns:
            row = conn.execute("select count(*) from public.cars where booking_status = 'booked'").fetchone()
            booked = int(row[0]) if row else 0
        return RollbackPlan(
            version=ATOMIC_BOOKING_VERSION,
            applied=applied,
            cars=cars,
            booked_cars=booked,
            rollback_file=self._rollback_path(),
            actions=(
                "back up booking_status, booked_by, booked_at, price_in_paise, currency of every car",
                "drop function public.book_car_atomic(uuid)",
                "drop indexes cars_available_listing_idx, cars_booked_by_idx",
                "drop columns " + ", ".join(BOOKING_COLUMNS) + " and their constraints",
                "restore the original cars policies and audit trigger function",
                f"remove migration {ATOMIC_BOOKING_VERSION} from supabase_migrations.schema_migrations",
            ),
        )

    def plan_rollback(self) -> RollbackPlan:
        """Describe what `rollback` would do, without changing anything."""
        with self.connect() as conn, wrap_db_errors():
            return self._plan(conn)

    def rollback(self, *, force: bool = False, backup_dir: Path | None = None) -> RollbackResult:
        """Undo the atomic-booking migration.

        Under an exclusive lock on ``public.cars`` (no booking can slip in): writes
        every car's booking and price fields to a JSON backup and fsyncs it, runs the
        rollback script, and deletes the migration's history row, all in one
        transaction, so a later `migrate` re-applies it.

        Args:
            force: roll back even though cars are booked (their bookings are in the backup).
            backup_dir: where the backup goes; default ``.carbook/backups``.

        Raises:
            NotMigratedError: the migration is not applied.
            RollbackRefusedError: cars are booked and ``force`` is false.
        """
        script = self._rollback_path().read_text(encoding="utf-8")
        backup_dir = Path(backup_dir or Path(".carbook") / "backups")
        with self._schema_lock() as conn:
            try:
                with conn.transaction():
                    plan = self._plan(conn)
                    if plan.applied:
                        conn.execute("lock table public.cars in exclusive mode")
                        plan = self._plan(conn)  # as of the lock: no booking slips in after it
                    refused = plan.refusal(force)
                    if refused is not None:
                        raise refused
                    backup_path, count = self._write_backup(conn, backup_dir)
                    conn.execute(script)
                    conn.execute(
                        "delete from supabase_migrations.schema_migrations where version = %s",
                        (ATOMIC_BOOKING_VERSION,),
                    )
            except psycopg.Error as exc:
                raise translate_db_error(exc) from exc
        return RollbackResult(plan=plan, backup_path=backup_path, backed_up_cars=count)

    @staticmethod
    def _write_backup(conn: psycopg.Connection[Any], backup_dir: Path) -> tuple[Path, int]:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                """select id::text, booking_status, booked_by::text, booked_at, price_in_paise, currency
                     from public.cars order by id"""
            )
            rows = cur.fetchall()
        now = datetime.now(UTC)
        doc = {
            "format": BACKUP_FORMAT,
            "format_version": 1,
            "migration": ATOMIC_BOOKING_VERSION,
            "created_at": now.isoformat(),
            "columns": ["id", *BOOKING_COLUMNS],
            "cars": [
                {**r, "booked_at": r["booked_at"].isoformat() if r["booked_at"] else None} for r in rows
            ],
        }
        path = (backup_dir / f"rollback-{ATOMIC_BOOKING_VERSION}-{now:%Y%m%dT%H%M%S%fZ}.json").absolute()
        try:
            backup_dir.mkdir(parents=True, exist_ok=True)
            # 0600: the backup names who booked what.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            # Raised inside the rollback's transaction, before anything is dropped.
            raise ValidationError(
                f"cannot write the rollback backup in {backup_dir}: {exc.strerror or exc}; nothing was rolled back",
                hint="pass a writable folder (--backup-dir)",
            ) from None
        return path, len(rows)

    def restore_backup(self, path: Path) -> RestoreResult:
        """Put the booking and price fields from a rollback backup back on the cars.

        Run it after `migrate` has re-applied the migration. Only what is still unset is
        restored: a car booked since keeps its new booking, a price set since is kept.
        Cars that no longer exist are skipped; a booking whose user was deleted keeps the
        car booked, with no user.

        Returns:
            How many cars the backup matched, and how many bookings and prices came back.

        Raises:
            ValidationError: the file is not a carbook rollback backup.
            NotMigratedError: the booking columns are not there (run `migrate` first).
        """
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValidationError(f"cannot read backup {path}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT:
            raise ValidationError(f"{path} is not a carbook rollback backup")
        cars = doc.get("cars")
        if not isinstance(cars, list):
            raise ValidationError(f"{path} has no list of cars")
        with self.connect() as conn:
            if not self._plan(conn).applied:
                raise NotMigratedError(
                    f"migration {ATOMIC_BOOKING_VERSION} is not applied; run migrate before restoring"
                )
            with wrap_db_errors(), conn.transaction(), conn.cursor() as cur:
                cur.execute(
                    """create temp table carbook_restore (
                         id uuid, booking_status text, booked_by uuid, booked_at timestamptz,
                         price_in_paise bigint, currency text) on commit drop"""
                )
                with cur.copy(
                    "copy carbook_restore (id, booking_status, booked_by, booked_at, price_in_paise, "
                    "currency) from stdin"
                ) as copy:
                    for car in cars:
                        copy.write_row([car.get(c) for c in ("id", *BOOKING_COLUMNS)])
                # Bookings can be made from the moment `migrate` re-applies the feature: nothing
                # made since is overwritten. Under the lock no new one can slip in meanwhile.
                cur.execute("lock table public.cars in exclusive mode")
                cur.execute(
                    """update public.cars c
                          set booking_status = r.booking_status,
                              booked_by = u.id,
                              booked_at = r.booked_at
                         from carbook_restore r
                         left join auth.users u on u.id = r.booked_by
                        where c.id = r.id and r.booking_status = 'booked'
                          and c.booking_status = 'available' and c.booked_by is null"""
                )
                bookings = cur.rowcount
                # Prices only where nobody has set one since (still the column defaults).
                cur.execute(
                    """update public.cars c
                          set price_in_paise = r.price_in_paise, currency = r.currency
                         from carbook_restore r
                        where c.id = r.id and c.price_in_paise = 0 and c.currency = 'INR'
                          and (r.price_in_paise, r.currency) is distinct from (0, 'INR')"""
                )
                prices = cur.rowcount
                cur.execute("select count(*) from carbook_restore r join public.cars c using (id)")
                row = cur.fetchone()
                return RestoreResult(cars=int(row[0]) if row else 0, bookings=bookings, prices=prices)
