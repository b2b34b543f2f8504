"""Re-applying a rolled-back migration puts its backup back in the same transaction: no
booked car is ever free, and no backup goes back twice."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from carbook_sdk import BackupMissingError
from carbook_sdk.ops.backups import restored_marker
from tests.helpers import Db, book, create_car, create_user

BOOKING = (
    "select id, booking_status, booked_by, booked_at, price_in_paise, currency from public.cars order by id"
)


def _booking_data(db: Db) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(BOOKING).fetchall()


def _fleet(db: Db) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Six cars in three currencies, three of them booked by three users."""
    users = [create_user(db) for _ in range(3)]
    cars = [create_car(db, price=1500 * (i + 1), currency=("JPY", "USD", "INR")[i % 3]) for i in range(6)]
    for user, car in zip(users, cars[::2], strict=True):
        assert book(db, car, user)["code"] == "booked"
    return users, cars


class Grabber:
    """Someone booking the booked cars over and over while ops works: every answer must be
    a refusal or an error, never a booking."""

    def __init__(self, db: Db, cars: list[uuid.UUID]) -> None:
        self.db, self.cars = db, cars
        self.user = create_user(db)
        self.stop = threading.Event()
        self.outcomes: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Grabber:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        claims = json.dumps({"role": "authenticated", "sub": str(self.user)})
        with psycopg.connect(self.db.url, autocommit=True) as conn:
            while not self.stop.is_set():
                for car in self.cars:
                    try:
                        with conn.transaction():
                            conn.execute("set local role authenticated")
                            conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
                            row = conn.execute("select public.book_car_atomic(%s)", (str(car),)).fetchone()
                        self.outcomes.append(row[0]["code"] if row else "none")
                    except psycopg.Error as exc:  # the function or its columns are gone, mid-change
                        self.outcomes.append(type(exc).__name__)


def test_rollback_then_migrate_keeps_every_booking_and_price(db: Db, tmp_path: Path) -> None:
    _, cars = _fleet(db)
    before = _booking_data(db)
    database = db.database
    with Grabber(db, cars[::2]) as grabber:
        rolled = database.rollback(force=True, backup_dir=tmp_path)
        result = database.migrate(backup_dir=tmp_path)
        # Some attempts after the migration too: they find the cars booked.
        deadline = time.monotonic() + 10
        while grabber.outcomes.count("already_booked") < 3 and time.monotonic() < deadline:
            grabber.stop.wait(0.01)
    assert "booked" not in grabber.outcomes
    assert {"UndefinedFunction", "already_booked"} <= set(grabber.outcomes), set(grabber.outcomes)
    assert _booking_data(db) == before
    restored = result.restored
    assert restored is not None and restored.backup == rolled.backup_path
    assert (restored.cars, restored.bookings, restored.prices, restored.not_restored) == (6, 3, 6, ())
    assert result.cars_without_backup == 0
    assert restored_marker(rolled.backup_path).is_file()
    assert database.verify().ok

    # The next cycle takes the next backup, never the one already put back.
    again = database.rollback(force=True, backup_dir=tmp_path)
    second = database.migrate(backup_dir=tmp_path)
    assert second.restored is not None and second.restored.backup == again.backup_path
    assert _booking_data(db) == before


def test_rows_that_cannot_come_back_are_listed_and_the_migration_still_applies(
    db: Db, tmp_path: Path
) -> None:
    users, cars = _fleet(db)
    database = db.database
    database.rollback(force=True, backup_dir=tmp_path)
    with db.connect() as conn:
        conn.execute("delete from public.cars where id = %s", (cars[0],))  # booked by users[0]
        conn.execute("delete from auth.users where id = %s", (users[1],))  # booked cars[2]
    result = database.migrate(backup_dir=tmp_path)
    assert result.applied and result.restored is not None
    reasons = {(r.car_id, r.reason) for r in result.restored.not_restored}
    assert reasons == {
        (str(cars[0]), "the car no longer exists"),
        (str(cars[2]), "the user who booked it no longer exists: it is booked again, with no user"),
    }
    assert (result.restored.bookings, result.restored.prices) == (2, 5)
    with db.connect() as conn:
        rows = {r[0]: r[1:] for r in conn.execute("select id, booking_status, booked_by from public.cars")}
    assert rows[cars[2]] == ("booked", None)  # never free, though its booker is gone
    assert rows[cars[4]] == ("booked", users[2])


def test_no_restore_keeps_the_backup_for_later(db: Db, tmp_path: Path) -> None:
    _fleet(db)
    before = _booking_data(db)
    database = db.database
    rolled = database.rollback(force=True, backup_dir=tmp_path)
    result = database.migrate(restore=False, backup_dir=tmp_path)
    assert result.restored is None and result.cars_without_backup == 6
    assert db.scalar("select count(*) from public.cars where booking_status = 'booked'") == 0
    assert not restored_marker(rolled.backup_path).exists()
    restored = database.restore_backup(rolled.backup_path)
    assert (restored.bookings, restored.prices) == (3, 6)
    assert restored_marker(rolled.backup_path).is_file()
    assert _booking_data(db) == before


def _forget_the_database_copy(db: Db) -> None:
    """As a rollback made before the database kept copies of its backups left it."""
    with db.connect() as conn:
        conn.execute("drop schema carbook_ops cascade")


def test_a_file_backup_of_another_database_is_never_picked(db: Db, tmp_path: Path) -> None:
    _fleet(db)
    before = _booking_data(db)
    database = db.database
    rolled = database.rollback(force=True, backup_dir=tmp_path)
    _forget_the_database_copy(db)
    doc = json.loads(rolled.backup_path.read_text())
    doc["database"]["oid"] = "1"  # as if taken from another database
    rolled.backup_path.write_text(json.dumps(doc))
    # Bookings were made here, and no backup of this database is left: refused, not freed.
    with pytest.raises(BackupMissingError, match="no backup of its bookings and prices is left"):
        database.migrate(backup_dir=tmp_path)
    assert database.status().pending
    assert db.scalar("select to_regprocedure('public.book_car_atomic(uuid)')") is None
    # Saying so frees them.
    result = database.migrate(backup_dir=tmp_path, restore=False)
    assert result.restored is None and result.cars_without_backup == 6
    assert db.scalar("select count(*) from public.cars where booking_status = 'booked'") == 0
    assert _booking_data(db) != before


def test_a_file_backup_from_before_the_database_kept_copies_is_still_put_back(db: Db, tmp_path: Path) -> None:
    _fleet(db)
    before = _booking_data(db)
    database = db.database
    rolled = database.rollback(force=True, backup_dir=tmp_path)
    _forget_the_database_copy(db)
    result = database.migrate(backup_dir=tmp_path)
    assert result.restored is not None and result.restored.source == "file"
    assert result.restored.backup == rolled.backup_path
    assert _booking_data(db) == before
    assert restored_marker(rolled.backup_path).is_file()


def test_migrate_finds_the_backup_without_being_told_where(db: Db, tmp_path: Path) -> None:
    """The rollback wrote its backup to a folder migrate is not told about: the database's
    copy is found all the same, and marked restored in the same transaction."""
    _fleet(db)
    before = _booking_data(db)
    database = db.database
    database.rollback(force=True, backup_dir=tmp_path / "elsewhere")
    result = database.migrate(backup_dir=tmp_path / "default")
    assert result.restored is not None and result.restored.source == "database"
    assert _booking_data(db) == before
    assert db.scalar("select count(*) from carbook_ops.rollback_backups where restored_at is null") == 0
