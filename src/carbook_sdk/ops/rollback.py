"""Rollback of the atomic-booking migration, with a backup first, and restoring that backup."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg

from ..errors import CarbookError, ConfigurationError, NotMigratedError, RollbackRefusedError, ValidationError
from .backups import (
    ATOMIC_BOOKING_VERSION,
    BOOKING_COLUMNS,
    RestoreResult,
    apply_backup,
    database_identity,
    default_backup_dir,
    mark_restored,
    mark_stored_restored,
    read_backup,
    same_database,
    write_backup,
)
from .connection import Model
from .migrations import Migrations

__all__ = [
    "ATOMIC_BOOKING_VERSION",
    "RestoreResult",
    "Rollback",
    "RollbackPlan",
    "RollbackResult",
    "undone_versions",
]

ROLLBACK_FILE = "20250916010001_rollback_atomic_booking_implementation.sql"
#: The rollback file's first line names every migration it undoes: the feature's, and the
#: later ones that build on it (they redefine its function and policies), so a later
#: `migrate` re-applies them all. A test fails when a migration touching the feature is
#: missing from it.
_UNDOES = re.compile(r"\A-- carbook: undoes ((?:\d{14} ?)+)\n")


def undone_versions(script: str) -> tuple[str, ...]:
    """The versions a rollback script's header says it undoes.

    Raises:
        ConfigurationError: the script has no ``-- carbook: undoes VERSION …`` first line.
    """
    m = _UNDOES.match(script)
    if m is None:
        raise ConfigurationError(
            f"{ROLLBACK_FILE} does not start with `-- carbook: undoes VERSION ...`: "
            "it must name the migrations it undoes"
        )
    return tuple(m.group(1).split())


class RollbackPlan(Model):
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
                "bookings: roll back with force (the CLI's --force) to back them up and drop them anyway.",
                booked_cars=self.booked_cars,
            )
        return None


class RollbackResult(Model):
    plan: RollbackPlan
    backup_path: Path
    backed_up_cars: int


class Rollback(Migrations):
    """Plan, run and undo the rollback."""

    def _rollback_path(self) -> Path:
        return self.project_dir / "rollbacks" / ROLLBACK_FILE

    def undone(self) -> tuple[str, ...]:
        """The migrations the rollback undoes (its file's header), the feature's first."""
        return undone_versions(self._rollback_path().read_text(encoding="utf-8"))

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
                "restore the original cars policies, audit trigger function and admin test",
                "take public.cars out of the supabase_realtime publication",
                f"remove migrations {', '.join(self.undone())} from supabase_migrations.schema_migrations",
            ),
        )

    def plan_rollback(self) -> RollbackPlan:
        """Describe what `rollback` would do, without changing anything.

        Raises:
            CarbookConnectionError: the database cannot be reached.
        """
        with self.connect() as conn, conn.transaction():
            return self._plan(conn)

    def rollback(self, *, force: bool = False, backup_dir: Path | None = None) -> RollbackResult:
        """Undo the atomic-booking migration.

        Under an exclusive lock on ``public.cars`` (no booking can slip in): writes
        every car's booking and price fields to a JSON backup and fsyncs it, runs the
        rollback script, and deletes the migration's history row, all in one
        transaction, so a later `migrate` re-applies it — and puts this backup back in
        the same transaction, when it looks in the same ``backup_dir``.

        Args:
            force: roll back even though cars are booked (their bookings are in the backup).
            backup_dir: where the backup goes; default ``.carbook/backups`` at the project root.

        Raises:
            NotMigratedError: the migration is not applied.
            RollbackRefusedError: cars are booked and ``force`` is false.
        """
        script = self._rollback_path().read_text(encoding="utf-8")
        backup_dir = Path(backup_dir or default_backup_dir())
        with self.connect() as conn, self._locked(conn):
            plan = self._plan(conn)
            if plan.applied:
                conn.execute("lock table public.cars in exclusive mode")
                plan = self._plan(conn)  # as of the lock: no booking slips in after it
            refused = plan.refusal(force)
            if refused is not None:
                raise refused
            backup_path, count = write_backup(conn, backup_dir)
            conn.execute(script)
            conn.execute(
                "delete from supabase_migrations.schema_migrations where version = any(%s)",
                (list(undone_versions(script)),),
            )
            conn.execute("notify pgrst, 'reload schema'")  # delivered at commit
        return RollbackResult(plan=plan, backup_path=backup_path, backed_up_cars=count)

    def restore_backup(self, path: Path) -> RestoreResult:
        """Put the booking and price fields from a rollback backup back on the cars, and
        mark the backup restored (a sidecar ``<backup>.restored``) so `migrate` leaves it.

        `migrate` does this itself, in the transaction that re-applies the migration, for
        the latest backup of the same database in its backup folder; this is for a backup
        kept elsewhere. Only what is still unset is restored: a car booked since keeps its
        new booking, a price set since is kept. Cars that no longer exist are skipped; a
        booking whose user was deleted comes back booked, with no user. Each such car is
        listed in ``not_restored``.

        Returns:
            How many cars the backup matched, how many bookings and prices came back, and
            what did not.

        Raises:
            ValidationError: the file is not a carbook rollback backup, or is a backup of
                another database (nothing is restored).
            NotMigratedError: the booking columns are not there (run `migrate` first).
        """
        path = Path(path)
        doc = read_backup(path)
        with self.connect() as conn, self._locked(conn):
            if not self._plan(conn).applied:
                raise NotMigratedError(
                    f"migration {ATOMIC_BOOKING_VERSION} is not applied; run migrate before restoring"
                )
            recorded = doc.get("database")
            target = database_identity(conn)
            if isinstance(recorded, dict) and recorded.get("oid") and not same_database(recorded, target):
                raise ValidationError(
                    f"{path} is a backup of another database ({_describe(recorded)}), not of this one "
                    f"({_describe(target)}); nothing was restored",
                    hint="restore it into the database it came from",
                )
            result = apply_backup(conn, doc, path=path.absolute())
            mark_stored_restored(conn, result, doc=doc)
        mark_restored(path, result)
        return result


def _describe(identity: dict[str, Any]) -> str:
    """A database as a person can tell it apart: its name, oid and cluster."""
    system = identity.get("system_identifier")
    return f"database {identity.get('name')}, oid {identity.get('oid')}" + (
        f", cluster {system}" if system else ""
    )
