"""Rollback backups: the booking and price data a rollback drops, kept in a JSON file,
and putting it back — by `restore_backup`, or by `migrate` in the transaction that
re-applies the migration.

Every backup is kept twice: in the file users keep, and in the database it came from
(``carbook_ops.rollback_backups``, a schema of carbook's own that the rollback never
touches and PostgREST never serves), written in the rollback's own transaction. `migrate`
restores from the database's copy in the transaction that re-applies the migration and
marks it restored in that same transaction, so no kill can separate "restored" from
"committed", and no ``--backup-dir`` has to be remembered. Files are for people (and for
`carbook db restore`), and for backups taken before the database kept its own copy; a
file records which database it came from, and a sidecar ``<backup>.restored`` says it has
been put back.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import ValidationError
from .connection import Model

__all__ = [
    "ATOMIC_BOOKING_VERSION",
    "BACKUP_FORMAT",
    "BOOKING_COLUMNS",
    "DEFAULT_BACKUP_DIR",
    "NotRestored",
    "RestoreResult",
    "StoredBackup",
    "apply_backup",
    "database_identity",
    "default_backup_dir",
    "find_backup",
    "latest_stored_backup",
    "mark_restored",
    "mark_stored_restored",
    "read_backup",
    "restored_marker",
    "rolled_back_before",
    "same_database",
    "store_backup",
    "write_backup",
]

#: The migration that `rollback` undoes.
ATOMIC_BOOKING_VERSION = "20250916010000"
BACKUP_FORMAT = "carbook.rollback-backup"
#: Version 2 records the database the backup came from.
BACKUP_FORMAT_VERSION = 2
#: The columns the rollback drops, and so the ones its backup keeps.
BOOKING_COLUMNS = ("booking_status", "booked_by", "booked_at", "price_in_paise", "currency")
#: Where `rollback` writes backups and `migrate` looks for them, unless told otherwise:
#: under the project root (see `default_backup_dir`).
DEFAULT_BACKUP_DIR = Path(".carbook") / "backups"


def default_backup_dir() -> Path:
    """``.carbook/backups`` at the project's root (found as the Supabase CLI finds it), so
    a `migrate` run from any subfolder finds the backup a `rollback` wrote; outside a
    project, under the current folder."""
    from ..config import find_project

    return (find_project() or Path.cwd()) / DEFAULT_BACKUP_DIR


class NotRestored(Model):
    """A car whose booking or price could not be put back as the backup has it."""

    car_id: str
    reason: str


class RestoreResult(Model):
    """What a backup put back."""

    #: The backup file (for the database's own copy: the file written beside it).
    backup: Path | None = None
    #: Where the data came from: the database's own copy of the backup, or a file.
    source: Literal["database", "file"] = "file"
    #: How many of the backup's cars still exist.
    cars: int
    bookings: int
    prices: int
    #: Each car whose booking or price did not come back as it was, and why.
    not_restored: tuple[NotRestored, ...] = ()


def database_identity(conn: psycopg.Connection[Any]) -> dict[str, str | None]:
    """What tells this database apart from any other, through any pooler or address:
    the cluster's system identifier (where readable), the database's oid and name."""
    row = conn.execute(
        """select current_database(),
                  (select oid::text from pg_catalog.pg_database where datname = current_database()),
                  case when has_function_privilege('pg_catalog.pg_control_system()', 'execute')
                       then (select system_identifier::text from pg_catalog.pg_control_system()) end"""
    ).fetchone()
    assert row is not None
    name, oid, system = row
    return {"name": name, "oid": oid, "system_identifier": system}


def write_backup(conn: psycopg.Connection[Any], backup_dir: Path) -> tuple[Path, int]:
    """Write every car's booking and price fields to a new backup file, fsynced (inside
    the caller's transaction, under its lock). Returns the file and how many cars.

    Raises:
        ValidationError: the file cannot be written.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """select id::text, booking_status, booked_by::text, booked_at, price_in_paise, currency
                 from public.cars order by id"""
        )
        rows = cur.fetchall()
    now = datetime.now(UTC)
    doc = {
        "format": BACKUP_FORMAT,
        "format_version": BACKUP_FORMAT_VERSION,
        "migration": ATOMIC_BOOKING_VERSION,
        "created_at": now.isoformat(),
        "database": database_identity(conn),
        "columns": ["id", *BOOKING_COLUMNS],
        "cars": [{**r, "booked_at": r["booked_at"].isoformat() if r["booked_at"] else None} for r in rows],
    }
    path = (backup_dir / f"rollback-{ATOMIC_BOOKING_VERSION}-{now:%Y%m%dT%H%M%S%fZ}.json").absolute()
    try:
        backup_dir.mkdir(parents=True, exist_ok=True)
        _write_private(path, doc)
    except OSError as exc:
        # Raised inside the rollback's transaction, before anything is dropped.
        why = "it is a file, not a folder" if backup_dir.is_file() else (exc.strerror or str(exc)).lower()
        raise ValidationError(
            f"cannot write the rollback backup in {backup_dir}: {why}; nothing was rolled back",
            hint="pass a writable folder (--backup-dir)",
        ) from None
    store_backup(conn, doc, path)
    return path, len(rows)


#: The database's own copy of every rollback backup. Created by the first rollback (a
#: hosted project never gets carbook's bootstrap); nothing in it is granted to an API role.
_STORE = """
create schema if not exists carbook_ops;
comment on schema carbook_ops is 'carbook ops data (rollback backups); never exposed through the API';
revoke all on schema carbook_ops from public;
create table if not exists carbook_ops.rollback_backups (
  id bigint generated always as identity primary key,
  migration text not null,
  created_at timestamptz not null default now(),
  doc jsonb not null,
  file text,
  restored_at timestamptz,
  restored jsonb
);
revoke all on carbook_ops.rollback_backups from public
"""


class StoredBackup(Model):
    """A rollback backup as the database keeps it."""

    id: int
    doc: dict[str, Any]
    file: Path | None


def _has_store(conn: psycopg.Connection[Any]) -> bool:
    return conn.execute("select to_regclass('carbook_ops.rollback_backups')").fetchone() != (None,)


def store_backup(conn: psycopg.Connection[Any], doc: dict[str, Any], path: Path | None) -> None:
    """Keep ``doc`` in the database, inside the caller's (the rollback's) transaction."""
    conn.execute(_STORE)
    conn.execute(
        "insert into carbook_ops.rollback_backups (migration, doc, file) values (%s, %s, %s)",
        (doc["migration"], Jsonb(doc), str(path) if path else None),
    )


def latest_stored_backup(conn: psycopg.Connection[Any], migration: str) -> StoredBackup | None:
    """The newest backup of ``migration`` the database keeps and has not put back yet,
    locked until the caller's transaction ends."""
    if not _has_store(conn):
        return None
    row = conn.execute(
        """select id, doc, file from carbook_ops.rollback_backups
            where migration = %s and restored_at is null
            order by created_at desc, id desc limit 1 for update""",
        (migration,),
    ).fetchone()
    if row is None:
        return None
    return StoredBackup(id=row[0], doc=row[1], file=Path(row[2]) if row[2] else None)


def mark_stored_restored(
    conn: psycopg.Connection[Any],
    result: RestoreResult,
    *,
    backup_id: int | None = None,
    doc: dict[str, Any] | None = None,
) -> None:
    """Mark the database's copy restored, in the caller's transaction: by id, or (for a
    file put back by `restore`) the unrestored copy with the same content's timestamp."""
    if not _has_store(conn):
        return
    summary = Jsonb(_restored_summary(result))
    if backup_id is not None:
        conn.execute(
            "update carbook_ops.rollback_backups set restored_at = now(), restored = %s where id = %s",
            (summary, backup_id),
        )
    elif doc is not None:
        conn.execute(
            """update carbook_ops.rollback_backups set restored_at = now(), restored = %s
                where restored_at is null and migration = %s and doc->>'created_at' = %s""",
            (summary, doc.get("migration"), doc.get("created_at")),
        )


def rolled_back_before(conn: psycopg.Connection[Any], migration: str) -> bool:
    """Whether this database shows that ``migration`` was applied once and rolled back:
    a backup it keeps (restored or not), or bookings in its audit trail, which only the
    booking function writes."""
    if _has_store(conn) and conn.execute(
        "select exists (select 1 from carbook_ops.rollback_backups where migration = %s)", (migration,)
    ).fetchone() == (True,):
        return True
    if conn.execute("select to_regclass('public.audit_logs')").fetchone() == (None,):
        return False
    row = conn.execute(
        "select exists (select 1 from public.audit_logs where action = 'car.booked')"
    ).fetchone()
    return row == (True,)


def _write_private(path: Path, doc: dict[str, Any]) -> None:
    # 0600: a backup names who booked what.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


def read_backup(path: Path) -> dict[str, Any]:
    """The backup's content, checked to be a carbook rollback backup.

    Raises:
        ValidationError: the file cannot be read or is not a carbook rollback backup.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        why = "it is a folder" if Path(path).is_dir() else (exc.strerror or str(exc)).lower()
        raise ValidationError(
            f"cannot read backup {path}: {why}",
            hint="give the file `carbook db rollback` wrote (it says where)",
        ) from None
    except ValueError:  # not JSON, or not UTF-8: whatever it is, it is no backup of ours
        raise ValidationError(f"{path} is not a carbook rollback backup (it is not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT:
        raise ValidationError(f"{path} is not a carbook rollback backup")
    cars = doc.get("cars")
    if not isinstance(cars, list) or not all(isinstance(c, dict) for c in cars):
        raise ValidationError(f"{path} has no list of cars")
    return doc


def restored_marker(path: Path) -> Path:
    """The sidecar file that says a backup has been applied."""
    return path.with_name(path.name + ".restored")


def find_backup(backup_dir: Path, migration: str, identity: dict[str, str | None]) -> Path | None:
    """The latest backup in ``backup_dir`` of ``migration`` taken from this database
    (``identity``) and not restored yet; None when there is none.

    Files that are not carbook backups, or that do not say which database they came
    from (written before carbook recorded it), are never picked: restore those by hand.
    """
    found: list[tuple[str, Path]] = []
    for path in sorted(Path(backup_dir).glob(f"rollback-{migration}-*.json")):
        if restored_marker(path).exists():
            continue
        try:
            doc = read_backup(path)
        except ValidationError:
            continue
        if doc.get("migration") == migration and same_database(doc.get("database"), identity):
            found.append((str(doc.get("created_at", "")), path))
    return max(found)[1] if found else None


def same_database(recorded: Any, identity: dict[str, str | None]) -> bool:
    """Whether a backup's recorded source is the database of ``identity``."""
    if not isinstance(recorded, dict) or not recorded.get("oid"):
        return False
    same = recorded.get("name") == identity["name"] and recorded.get("oid") == identity["oid"]
    if recorded.get("system_identifier") and identity["system_identifier"]:
        same = same and recorded["system_identifier"] == identity["system_identifier"]
    return same


def _restored_summary(result: RestoreResult) -> dict[str, Any]:
    return {
        "restored_at": datetime.now(UTC).isoformat(),
        "bookings": result.bookings,
        "prices": result.prices,
        "not_restored": [r.model_dump() for r in result.not_restored],
    }


def mark_restored(path: Path, result: RestoreResult) -> Path:
    """Write the sidecar that keeps ``path`` from being applied again.

    Raises:
        ValidationError: the sidecar cannot be written.
    """
    marker = restored_marker(path)
    try:
        _write_private(marker, _restored_summary(result))
    except FileExistsError:
        pass  # restored before (by `restore_backup`, say): it stays marked
    except OSError as exc:
        raise ValidationError(
            f"cannot mark backup {path} as restored: {exc.strerror or exc}",
            hint="make its folder writable",
        ) from None
    return marker


def apply_backup(
    conn: psycopg.Connection[Any],
    doc: dict[str, Any],
    *,
    path: Path | None = None,
    source: Literal["database", "file"] = "file",
) -> RestoreResult:
    """Put a backup's bookings and prices back, inside the caller's transaction.

    Only what is unset is restored: a booking made since is kept, a price set since is
    kept. A car that is gone is skipped; a booking whose user was deleted comes back
    booked with no user, as deleting the user would have left it. Each is reported.
    """
    with conn.cursor() as cur:
        # Dropped at commit: nothing is left on a server connection a pooler hands on.
        cur.execute(
            """create temp table carbook_restore (
                 id uuid, booking_status text, booked_by uuid, booked_at timestamptz,
                 price_in_paise bigint, currency text) on commit drop"""
        )
        with cur.copy(
            "copy carbook_restore (id, booking_status, booked_by, booked_at, price_in_paise, currency) from stdin"
        ) as copy:
            for car in doc["cars"]:
                copy.write_row([car.get(c) for c in ("id", *BOOKING_COLUMNS)])
        # Nobody books while the backup goes back, so what is compared below stays true.
        cur.execute("lock table public.cars in exclusive mode")
        # What will not come back as it was, decided before the updates change the rows.
        cur.execute(
            """select r.id::text,
                      case
                        when c.id is null then 'the car no longer exists'
                        when r.booking_status = 'booked' and c.booking_status = 'booked'
                             and c.booked_by is distinct from r.booked_by
                          then 'it was booked again since: that booking is kept'
                        when r.booking_status = 'booked' and r.booked_by is not null and u.id is null
                             and c.booking_status = 'available'
                          then 'the user who booked it no longer exists: it is booked again, with no user'
                      end,
                      case
                        when c.id is not null
                             and (r.price_in_paise, r.currency) is distinct from (0::bigint, 'INR')
                             and (c.price_in_paise, c.currency) is distinct from (0::bigint, 'INR')
                             and (c.price_in_paise, c.currency) is distinct from (r.price_in_paise, r.currency)
                          then 'its price was set since: that price is kept'
                      end
                 from carbook_restore r
                 left join public.cars c on c.id = r.id
                 left join auth.users u on u.id = r.booked_by
                where r.booking_status = 'booked'
                   or (r.price_in_paise, r.currency) is distinct from (0::bigint, 'INR')
                order by r.id"""
        )
        not_restored = tuple(
            NotRestored(car_id=car_id, reason=reason)
            for car_id, *reasons in cur.fetchall()
            for reason in reasons
            if reason is not None
        )
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
                  and (r.price_in_paise, r.currency) is distinct from (0::bigint, 'INR')"""
        )
        prices = cur.rowcount
        cur.execute("select count(*) from carbook_restore r join public.cars c using (id)")
        row = cur.fetchone()
    return RestoreResult(
        backup=path,
        source=source,
        cars=int(row[0]) if row else 0,
        bookings=bookings,
        prices=prices,
        not_restored=not_restored,
    )
