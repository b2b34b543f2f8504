"""Audit rows written by the database, and bad input refused with nothing changed."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from carbook_sdk.errors import ValidationError
from carbook_sdk.ops.translate import wrap_db_errors
from tests.helpers import Db, book, connect_as, create_car, create_user


def _snapshot(db: Db) -> tuple[Any, ...]:
    with db.connect() as conn:
        return (
            conn.execute("select * from public.cars order by id").fetchall(),
            conn.execute("select * from public.audit_logs order by id").fetchall(),
        )


def test_admin_insert_and_update_are_audited_with_the_actor(db: Db) -> None:
    admin = create_user(db, admin=True)
    with connect_as(db, "authenticated", admin) as conn:
        row = conn.execute(
            """insert into public.cars (make, model, year, image_path, price_in_paise, currency)
               values ('Tata', 'Punch', 2024, 'cars/p.png', 99900, 'INR') returning id"""
        ).fetchone()
        assert row is not None
        car = row[0]
        conn.execute("update public.cars set price_in_paise = 89900 where id = %s", (car,))
    with db.connect() as conn:
        rows = conn.execute(
            """select actor_id, action, old_data ->> 'price_in_paise', new_data ->> 'price_in_paise'
                 from public.audit_logs where record_id = %s order by id""",
            (car,),
        ).fetchall()
    assert rows == [
        (admin, "car.insert", None, "99900"),
        (admin, "car.update", "99900", "89900"),
    ]


def test_updated_at_moves_on_update(db: Db) -> None:
    admin = create_user(db, admin=True)
    car = create_car(db)
    before = db.scalar("select updated_at from public.cars where id = %s", (car,))
    with connect_as(db, "authenticated", admin) as conn:
        conn.execute("update public.cars set model = 'Nexon EV' where id = %s", (car,))
    assert db.scalar("select updated_at from public.cars where id = %s", (car,)) > before


def test_malformed_uuid_is_refused_and_changes_nothing(db: Db) -> None:
    user = create_user(db)
    create_car(db)
    before = _snapshot(db)
    with pytest.raises(ValidationError) as info, wrap_db_errors():
        book(db, "not-a-uuid", user)
    assert str(info.value) == "not a valid uuid: 'not-a-uuid'"
    assert _snapshot(db) == before


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("price_in_paise", -1, "price must not be negative"),
        ("currency", "inr", "currency must be an ISO 4217 code of three upper-case letters, like INR"),
        ("currency", "RUPEE", "currency must be an ISO 4217 code of three upper-case letters, like INR"),
        ("year", 1800, "year must be between 1886 and 2100"),
        ("make", "   ", "make must be 1 to 100 characters"),
    ],
)
def test_bad_car_values_are_refused_on_insert_and_update(
    db: Db, column: str, value: Any, message: str
) -> None:
    admin = create_user(db, admin=True)
    car = create_car(db)
    before = _snapshot(db)
    values = {"make": "Tata", "model": "Nexon", "year": 2024, "price_in_paise": 1, "currency": "INR"}
    values[column] = value
    with connect_as(db, "authenticated", admin) as conn:
        with pytest.raises(ValidationError) as on_update, wrap_db_errors():
            conn.execute(f"update public.cars set {column} = %s where id = %s", (value, car))
        with pytest.raises(ValidationError) as on_insert, wrap_db_errors():
            conn.execute(
                "insert into public.cars (make, model, year, price_in_paise, currency, image_path)"
                " values (%(make)s, %(model)s, %(year)s, %(price_in_paise)s, %(currency)s, 'x.png')",
                values,
            )
    assert (str(on_update.value), str(on_insert.value)) == (message, message)
    assert _snapshot(db) == before


def test_raw_driver_error_is_a_check_violation(db: Db) -> None:
    """Without translation the database still refuses: the constraint, not the client, decides."""
    car = create_car(db)
    with db.connect() as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("update public.cars set price_in_paise = -5 where id = %s", (car,))


def test_the_ops_path_says_what_the_rest_path_says_never_a_constraint_name(db: Db) -> None:
    """One set of human messages for a violation, whichever path met it."""
    from carbook_sdk.errors import ConflictError

    with db.connect() as conn:
        conn.execute(
            "insert into public.cars (make, model, year, image_path, ref) values ('A', 'B', 2020, 'x.png', 'dup-1')"
        )
        before = _snapshot(db)
        with pytest.raises(ConflictError) as taken, wrap_db_errors():
            conn.execute(
                "insert into public.cars (make, model, year, image_path, ref) values ('A', 'B', 2020, 'x.png', 'dup-1')"
            )
        with pytest.raises(ValidationError) as missing, wrap_db_errors():
            conn.execute("insert into public.cars (model, year, image_path) values ('B', 2020, 'x.png')")
        with pytest.raises(ValidationError) as dangling, wrap_db_errors():
            conn.execute(
                "insert into public.user_roles (user_id, role) values ('00000000-0000-4000-8000-00000000dead', 'admin')"
            )
    assert str(taken.value) == "a car with ref dup-1 already exists"
    assert str(missing.value) == "make is required"
    assert str(dangling.value) == "a value in user_roles refers to a row that does not exist"
    for err in (taken.value, missing.value, dangling.value):
        assert "_key" not in str(err) and "constraint" not in str(err) and "fkey" not in str(err)
    assert _snapshot(db) == before
