"""Rollback of the atomic-booking migration, with a backup first, and restoring that backup."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..errors import CarbookError, NotMigratedError, RollbackRefusedError, ValidationError
from .connection import Model
from .migrations import Migrations
from .translate import translate_db_error, wrap_db_errors

__all__ = ["ATOMIC_BOOKING_VERSION", "RestoreResult", "Rollback", "RollbackPlan", "RollbackResult"]

#: The migration that `rollback` undoes.
ATOMIC_BOOKING_VERSION = "20250916010000"
#: Later migrations that build on the feature (they redefine its function): rolling the
#: feature back undoes them too, so a later `migrate` re-applies them after it.
DEPENDENT_VERSIONS = ("20250920000000",)
ROLLBACK_FILE = "20250916010001_rollback_atomic_booking_implementation.sql"
BACKUP_FORMAT = "carbook.rollback-backup"
#: The columns the rollback drops, and so the ones its backup keeps.
BOOKING_COLUMNS = ("booking_status", "booked_by", "booked_at", "price_in_paise", "currency")


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
                "bookings. Use force to back them up and roll back anyway.",
                booked_cars=self.booked_cars,
            )
        return None


class RestoreResult(Model):
    """What `restore_backup` put back."""

    cars: int
    bookings: int
    prices: int


class RollbackResult(Model):
    plan: RollbackPlan
    backup_path: Path
    backed_up_cars: int


class Rollback(Migrations):
    """Plan, run and undo the rollback."""

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
                f"remove migrations {', '.join((ATOMIC_BOOKING_VERSION, *DEPENDENT_VERSIONS))}"
                " from supabase_migrations.schema_migrations",
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
                        "delete from supabase_migrations.schema_migrations where version = any(%s)",
                        ([ATOMIC_BOOKING_VERSION, *DEPENDENT_VERSIONS],),
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
