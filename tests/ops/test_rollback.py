"""Rollback: refuses on bookings, backs up first, and forward → back → forward keeps cars."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from carbook_sdk import NotMigratedError, RollbackRefusedError
from tests.helpers import Db, book, create_car, create_user

CAR_COLUMNS = "id, make, model, year, image_path, is_published, created_at"


def _cars(db: Db) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(f"select {CAR_COLUMNS} from public.cars order by id").fetchall()


def _applied(db: Db) -> list[str]:
    with db.connect() as conn:
        return [
            r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations order by 1")
        ]


def test_rollback_with_nothing_booked(db: Db, tmp_path: Path) -> None:
    create_car(db)
    result = db.database.rollback(backup_dir=tmp_path)
    assert result.backup_path.is_file()
    assert _applied(db) == ["20250916000000", "20250917000000", "20250918000000", "20250919000000"]
    assert db.scalar("select to_regprocedure('public.book_car_atomic(uuid)')") is None
    cols = {
        r[0]
        for r in db.connect().execute(
            "select column_name from information_schema.columns where table_name = 'cars'"
        )
    }
    assert cols.isdisjoint({"booking_status", "booked_by", "booked_at", "price_in_paise", "currency"})
    # The original policies are back: anon sees published cars whatever their bookings were.
    assert (
        db.scalar("select qual from pg_policies where tablename = 'cars' and policyname = 'cars_select_anon'")
        == "is_published"
    )


def test_rollback_refuses_while_cars_are_booked(db: Db, tmp_path: Path) -> None:
    car = create_car(db)
    book(db, car, create_user(db))
    before = _cars(db)
    with pytest.raises(RollbackRefusedError) as info:
        db.database.rollback(backup_dir=tmp_path)
    assert info.value.booked_cars == 1
    assert "1 car(s) are booked" in str(info.value)
    assert _applied(db) == [
        "20250916000000",
        "20250916010000",
        "20250917000000",
        "20250918000000",
        "20250919000000",
        "20250920000000",
        "20250921000000",
        "20250922000000",
    ]
    assert db.scalar("select booking_status from public.cars where id = %s", (car,)) == "booked"
    assert _cars(db) == before
    assert list(tmp_path.iterdir()) == []  # refused before any backup was written


def test_forced_rollback_backs_up_every_booking(db: Db, tmp_path: Path) -> None:
    users = [create_user(db) for _ in range(3)]
    cars = [create_car(db, price=1000 * (i + 1), currency="JPY") for i in range(5)]
    for user, car in zip(users, cars, strict=False):
        assert book(db, car, user)["code"] == "booked"
    with db.connect() as conn:
        expected = {
            str(r[0]): r[1:]
            for r in conn.execute(
                "select id, booking_status, booked_by::text, booked_at, price_in_paise, currency from public.cars"
            )
        }
    result = db.database.rollback(force=True, backup_dir=tmp_path)
    assert result.plan.booked_cars == 3
    doc = json.loads(result.backup_path.read_text())
    assert doc["format"] == "carbook.rollback-backup" and doc["migration"] == "20250916010000"
    assert stat.S_IMODE(result.backup_path.stat().st_mode) == 0o600
    backed = {c["id"]: c for c in doc["cars"]}
    assert set(backed) == set(expected)
    for car_id, (status, booked_by, booked_at, price, currency) in expected.items():
        c = backed[car_id]
        assert (c["booking_status"], c["booked_by"], c["price_in_paise"], c["currency"]) == (
            status,
            booked_by,
            price,
            currency,
        )
        assert c["booked_at"] == (booked_at.isoformat() if booked_at else None)


def test_forward_back_forward_keeps_every_car_and_verifies(db: Db, tmp_path: Path) -> None:
    users = [create_user(db) for _ in range(2)]
    cars = [create_car(db, published=i % 2 == 0) for i in range(6)]
    book(db, cars[0], users[0])
    book(db, cars[2], users[1])
    database = db.database
    original = _cars(db)
    assert database.verify().ok

    result = database.rollback(force=True, backup_dir=tmp_path)
    assert _cars(db) == original

    # No --backup-dir: the bookings come back from the copy the database keeps.
    migrated = database.migrate()
    assert _cars(db) == original
    assert database.verify().ok
    assert migrated.restored is not None and migrated.restored.source == "database"
    assert (migrated.restored.backup, migrated.restored.bookings) == (result.backup_path, 2)
    with db.connect() as conn:
        booked = dict(conn.execute("select id, booked_by from public.cars where booking_status = 'booked'"))
    assert booked == {cars[0]: users[0], cars[2]: users[1]}

    # The file says the same and is marked: restoring it again finds nothing to put back.
    restored = database.restore_backup(result.backup_path)
    assert (restored.cars, restored.bookings) == (6, 0)

    database.rollback(force=True, backup_dir=tmp_path)
    database.migrate()
    assert _cars(db) == original and database.verify().ok


def test_rollback_when_not_applied_is_refused(db: Db, tmp_path: Path) -> None:
    db.database.rollback(backup_dir=tmp_path)
    with pytest.raises(NotMigratedError, match="not applied: nothing to roll back"):
        db.database.rollback(backup_dir=tmp_path)


def test_restore_refuses_a_file_that_is_not_a_backup(db: Db, tmp_path: Path) -> None:
    from carbook_sdk import ValidationError

    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"cars": []}')
    before = _cars(db)
    with pytest.raises(ValidationError, match="is not a carbook rollback backup"):
        db.database.restore_backup(bogus)
    assert _cars(db) == before


def test_restore_never_overwrites_what_happened_since(db: Db, tmp_path: Path) -> None:
    """Between migrate and restore the feature is live: a booking or a price made in that
    window is kept, and nobody's booking is handed to somebody else."""
    old_owner, new_owner = create_user(db), create_user(db)
    taken, free, priced = (create_car(db, price=5000, currency="JPY") for _ in range(3))
    book(db, taken, old_owner)
    database = db.database
    result = database.rollback(force=True, backup_dir=tmp_path)
    database.migrate(restore=False)
    assert book(db, taken, new_owner)["code"] == "booked"  # booked again before the restore
    with db.connect() as conn:
        conn.execute("update public.cars set price_in_paise = 700, currency = 'USD' where id = %s", (priced,))

    restored = database.restore_backup(result.backup_path)
    assert (restored.bookings, restored.prices) == (0, 2)
    with db.connect() as conn:
        rows = dict(
            (r[0], r[1:])
            for r in conn.execute("select id, booked_by, price_in_paise, currency from public.cars")
        )
    assert rows[taken] == (new_owner, 5000, "JPY")
    assert rows[free] == (None, 5000, "JPY")
    assert rows[priced] == (None, 700, "USD")


def test_a_backup_that_cannot_be_written_stops_the_rollback_before_anything_is_dropped(
    db: Db, tmp_path: Path
) -> None:
    from carbook_sdk import ValidationError

    car = create_car(db)
    book(db, car, create_user(db))
    before = _cars(db)
    applied = _applied(db)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the backup folder should be")
    with pytest.raises(ValidationError, match="cannot write the rollback backup") as info:
        db.database.rollback(force=True, backup_dir=blocked)
    assert "nothing was rolled back" in str(info.value)
    assert _applied(db) == applied
    assert db.scalar("select booking_status from public.cars where id = %s", (car,)) == "booked"
    assert _cars(db) == before
    assert db.database.verify().failed == ()
