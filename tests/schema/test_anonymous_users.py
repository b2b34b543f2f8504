"""Anonymous users (``is_anonymous: true`` in the JWT, role ``authenticated``) get what
``anon`` gets for cars and cannot book: migration 20250921000000, and its rollback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import Db, book, create_car, create_user


@contextmanager
def as_anonymous(db: Db, user_id: uuid.UUID) -> Iterator[psycopg.Connection[Any]]:
    """A connection acting as PostgREST does for an anonymous user's token."""
    conn = db.connect()
    try:
        conn.execute("set role authenticated")
        claims = {"role": "authenticated", "sub": str(user_id), "is_anonymous": True}
        conn.execute("select set_config('request.jwt.claims', %s, false)", (json.dumps(claims),))
        yield conn
    finally:
        conn.close()


def _anonymous_user(db: Db, *, admin: bool = False) -> uuid.UUID:
    uid = create_user(db, admin=admin)
    with db.connect() as conn:
        conn.execute("update auth.users set email = null, is_anonymous = true where id = %s", (uid,))
    return uid


def _audit_rows(db: Db, car: uuid.UUID) -> int:
    return int(db.scalar("select count(*) from public.audit_logs where record_id = %s", (car,)))


def test_an_anonymous_user_cannot_book(db: Db) -> None:
    car = create_car(db)
    audit_before = _audit_rows(db, car)
    anonymous = _anonymous_user(db)
    with as_anonymous(db, anonymous) as conn:
        row = conn.execute("select public.book_car_atomic(%s)", (str(car),)).fetchone()
    assert row is not None
    assert row[0] == {
        "success": False,
        "code": "not_authenticated",
        "message": "Sign in with an account to book a car.",
        "car_id": str(car),
        "booked_by": None,
        "booked_at": None,
    }
    assert db.scalar("select booking_status from public.cars where id = %s", (car,)) == "available"
    assert _audit_rows(db, car) == audit_before
    # The same car is still there for a user with an account.
    assert book(db, car, create_user(db))["code"] == "booked"


def test_an_anonymous_user_sees_what_anon_sees(db: Db) -> None:
    anonymous = _anonymous_user(db)
    available = create_car(db)
    create_car(db, published=False)
    # Booked under the anonymous user's id (as if booked before the user became one, or
    # by hand): still not theirs to see, as it would not be for anon.
    create_car(db, booked_by=anonymous)
    with as_anonymous(db, anonymous) as conn:
        seen = {r[0] for r in conn.execute("select id from public.cars")}
    assert seen == {available}


def test_an_anonymous_user_is_never_an_admin(db: Db) -> None:
    anonymous = _anonymous_user(db, admin=True)
    unpublished = create_car(db, published=False)
    with as_anonymous(db, anonymous) as conn:
        assert conn.execute("select private.is_admin()").fetchone() == (False,)
        assert conn.execute("select count(*) from public.cars where id = %s", (unpublished,)).fetchone() == (
            0,
        )
        assert conn.execute("select count(*) from public.audit_logs").fetchone() == (0,)
        changed = conn.execute("update public.cars set is_published = true where id = %s", (unpublished,))
        assert changed.rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "insert into public.cars (make, model, year, image_path) values ('Kia', 'Sonet', 2024, 'k.png')"
            )
    assert db.scalar("select is_published from public.cars where id = %s", (unpublished,)) is False


def _anonymous_state(db: Db) -> tuple[Any, ...]:
    """What 20250921000000 defines, as the catalogue shows it."""
    with db.connect() as conn:
        return (
            conn.execute(
                """select p.oid::regprocedure::text, p.prosrc, p.prosecdef, p.proconfig, p.proacl::text
                     from pg_proc p
                    where p.oid in (to_regprocedure('public.book_car_atomic(uuid)'),
                                    to_regprocedure('private.is_admin()'))
                    order by 1"""
            ).fetchall(),
            conn.execute(
                """select tablename, policyname, cmd, roles::text, qual, with_check from pg_policies
                    where schemaname in ('public', 'storage') order by 1, 2"""
            ).fetchall(),
        )


def test_forward_rollback_forward_restores_the_anonymous_rules(db: Db, tmp_path: Path) -> None:
    forward = _anonymous_state(db)
    database = db.database
    database.rollback(backup_dir=tmp_path)
    with db.connect() as conn:
        # Rolled back to the base schema: its admin test, without the anonymous clause.
        base = conn.execute("select prosrc from pg_proc where oid = to_regprocedure('private.is_admin()')")
        assert "is_anonymous" not in str(base.fetchone())
    database.migrate()
    assert _anonymous_state(db) == forward
    assert database.verify().ok
    anonymous = _anonymous_user(db)
    car = create_car(db)
    with as_anonymous(db, anonymous) as conn:
        row = conn.execute("select public.book_car_atomic(%s)", (str(car),)).fetchone()
    assert row is not None and row[0]["code"] == "not_authenticated"
