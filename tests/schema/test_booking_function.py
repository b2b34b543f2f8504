"""public.book_car_atomic as real signed-in users: every outcome, and who may call it."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.helpers import Db, book, connect_as, create_car, create_user

ALREADY_BOOKED = "Already booked. Be fast next time."


def test_book_available_car(db: Db) -> None:
    user = create_user(db)
    car = create_car(db)
    result = book(db, car, user)
    assert result["success"] is True
    assert result["code"] == "booked"
    assert result["car_id"] == str(car)
    assert result["booked_by"] == str(user)
    assert result["booked_at"] is not None
    row = db.scalar("select row(booking_status, booked_by)::text from public.cars where id = %s", (car,))
    assert row == f"(booked,{user})"


def test_second_user_gets_already_booked_with_exact_message(db: Db) -> None:
    winner, loser = create_user(db), create_user(db)
    car = create_car(db)
    assert book(db, car, winner)["code"] == "booked"
    result = book(db, car, loser)
    assert result == {
        "success": False,
        "code": "already_booked",
        "message": ALREADY_BOOKED,
        "car_id": str(car),
        "booked_by": None,  # who holds it is not revealed
        "booked_at": None,
    }
    assert db.scalar("select booked_by from public.cars where id = %s", (car,)) == winner


def test_winner_retry_is_already_yours_and_idempotent(db: Db) -> None:
    user = create_user(db)
    car = create_car(db)
    first = book(db, car, user)
    again = book(db, car, user)
    assert again["success"] is True
    assert again["code"] == "already_yours"
    assert again["booked_by"] == str(user)
    assert again["booked_at"] == first["booked_at"]
    assert db.scalar("select count(*) from public.audit_logs where action = 'car.booked'") == 1


def test_unknown_car_is_not_found(db: Db) -> None:
    user = create_user(db)
    result = book(db, uuid.uuid4(), user)
    assert (result["success"], result["code"]) == (False, "not_found")
    assert db.scalar("select count(*) from public.audit_logs where action = 'car.booked'") == 0


def test_unpublished_car_is_not_published(db: Db) -> None:
    user = create_user(db)
    car = create_car(db, published=False)
    result = book(db, car, user)
    assert (result["success"], result["code"]) == (False, "not_published")
    assert db.scalar("select booking_status from public.cars where id = %s", (car,)) == "available"


def test_without_claims_is_not_authenticated(db: Db) -> None:
    car = create_car(db)
    result = book(db, car, None)
    assert (result["success"], result["code"]) == (False, "not_authenticated")
    assert db.scalar("select booking_status from public.cars where id = %s", (car,)) == "available"


def test_anon_cannot_execute(db: Db) -> None:
    car = create_car(db)
    with connect_as(db, "anon") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select public.book_car_atomic(%s)", (str(car),))
    assert db.scalar("select booking_status from public.cars where id = %s", (car,)) == "available"


def test_booking_writes_one_audit_row_with_the_booker(db: Db) -> None:
    user = create_user(db)
    car = create_car(db)
    book(db, car, user)
    with db.connect() as conn:
        rows = conn.execute(
            "select actor_id, action, new_data ->> 'booked_by' from public.audit_logs where record_id = %s"
            " and action <> 'car.insert'",
            (car,),
        ).fetchall()
    assert rows == [(user, "car.booked", str(user))]


def test_a_failing_audit_insert_undoes_the_booking(db: Db) -> None:
    """The update and its audit row commit together or not at all."""
    user = create_user(db)
    car = create_car(db)
    with db.connect() as conn:
        # A real failure inside the function's transaction: the audit insert is refused.
        conn.execute(
            """create function public.refuse_booking_audit() returns trigger language plpgsql as $$
               begin
                 if new.action = 'car.booked' then raise exception 'audit store unavailable'; end if;
                 return new;
               end $$;
               create trigger refuse_booking_audit before insert on public.audit_logs
                 for each row execute function public.refuse_booking_audit()"""
        )
    with pytest.raises(psycopg.errors.RaiseException):
        book(db, car, user)
    assert db.scalar("select booking_status from public.cars where id = %s", (car,)) == "available"
    assert db.scalar("select count(*) from public.audit_logs where action = 'car.booked'") == 0
