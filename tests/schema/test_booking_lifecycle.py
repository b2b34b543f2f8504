"""Migration 20250922000000 as real users: release and cancel, the admins' booking list,
deleting a car, no audit row for a change that changes nothing, and a release racing
bookers ending with exactly one new winner."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest

from tests.helpers import Db, as_role, book, connect_as, create_car, create_user


def _call(db: Db, sql: str, params: tuple[Any, ...], user: uuid.UUID | None) -> dict[str, Any]:
    with connect_as(db, "authenticated", user) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def release(db: Db, car: uuid.UUID, user: uuid.UUID | None, reason: str | None = None) -> dict[str, Any]:
    return _call(db, "select public.release_car(%s, %s)", (str(car), reason), user)


def cancel(db: Db, car: uuid.UUID, user: uuid.UUID | None) -> dict[str, Any]:
    return _call(db, "select public.cancel_booking(%s)", (str(car),), user)


def _snapshot(db: Db, car: uuid.UUID) -> tuple[Any, ...]:
    with db.connect() as conn:
        row = conn.execute(
            "select booking_status, booked_by, booked_at, updated_at from public.cars where id = %s", (car,)
        ).fetchone()
        audit = conn.execute("select count(*) from public.audit_logs").fetchone()
    return (row, audit)


def test_admin_releases_with_a_reason_and_the_audit_row_commits_with_it(db: Db) -> None:
    admin, driver = create_user(db, admin=True), create_user(db)
    car = create_car(db)
    booked = book(db, car, driver)
    result = release(db, car, admin, "  payment failed  ")
    assert (result["success"], result["code"], result["message"]) == (True, "released", "Booking released.")
    assert (result["booked_by"], result["booked_at"]) == (str(driver), booked["booked_at"])
    assert (result["ended_by"], result["reason"]) == (str(admin), "payment failed")
    row = db.scalar(
        "select row(booking_status, booked_by, booked_at)::text from public.cars where id = %s", (car,)
    )
    assert row == "(available,,)"
    with db.connect() as conn:
        audit = conn.execute(
            "select actor_id, action, old_data, new_data from public.audit_logs where record_id = %s"
            " and action not in ('car.booked', 'car.insert') order by id",
            (car,),
        ).fetchall()
    assert len(audit) == 1  # the release's own row, and no generic car.update beside it
    actor, action, old, new = audit[0]
    assert (actor, action) == (admin, "car.released")
    assert (old["booking_status"], old["booked_by"]) == ("booked", str(driver))
    assert (new["booking_status"], new["booked_by"], new["reason"]) == ("available", None, "payment failed")
    # Released, the car is bookable again, by anyone.
    assert book(db, car, create_user(db))["code"] == "booked"


def test_the_booker_cancels_their_own_booking(db: Db) -> None:
    driver = create_user(db)
    car = create_car(db)
    book(db, car, driver)
    result = cancel(db, car, driver)
    assert (result["success"], result["code"], result["ended_by"]) == (True, "cancelled", str(driver))
    assert db.scalar("select booking_status from public.cars where id = %s", (car,)) == "available"
    actions = db.scalar(
        "select array_agg(action order by id) from public.audit_logs where record_id = %s and action <> 'car.insert'",
        (car,),
    )
    assert actions == ["car.booked", "car.cancelled"]
    # release_car by the booker is the same cancel.
    book(db, car, driver)
    assert release(db, car, driver)["code"] == "cancelled"


@pytest.mark.parametrize(
    ("who", "fn", "code"),
    [
        ("stranger", "cancel", "not_yours"),
        ("stranger", "release", "not_yours"),
        ("admin", "cancel", "not_yours"),  # cancel is for one's own booking; an admin releases
        ("nobody", "release", "not_authenticated"),
        ("nobody", "cancel", "not_authenticated"),
    ],
)
def test_everyone_else_is_refused_and_nothing_changes(db: Db, who: str, fn: str, code: str) -> None:
    driver = create_user(db)
    caller = {"stranger": create_user(db), "admin": create_user(db, admin=True), "nobody": None}[who]
    car = create_car(db)
    book(db, car, driver)
    before = _snapshot(db, car)
    result = cancel(db, car, caller) if fn == "cancel" else release(db, car, caller, "mine now")
    assert (result["success"], result["code"]) == (False, code)
    assert result["booked_by"] is None  # who holds it is not revealed
    assert _snapshot(db, car) == before


def test_an_anonymous_session_cannot_end_a_booking(db: Db) -> None:
    driver = create_user(db)
    car = create_car(db)
    book(db, car, driver)
    before = _snapshot(db, car)
    with db.connect() as conn:
        conn.execute("set role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, false)",
            (f'{{"role": "authenticated", "sub": "{driver}", "is_anonymous": true}}',),
        )
        row = conn.execute("select public.cancel_booking(%s)", (str(car),)).fetchone()
    assert row is not None and row[0]["code"] == "not_authenticated"
    assert _snapshot(db, car) == before


@pytest.mark.parametrize(("state", "code"), [("available", "not_booked"), ("missing", "not_found")])
def test_releasing_a_car_that_is_not_booked_changes_nothing(db: Db, state: str, code: str) -> None:
    admin = create_user(db, admin=True)
    car = create_car(db) if state == "available" else uuid.uuid4()
    audit = db.scalar("select count(*) from public.audit_logs")
    assert (release(db, car, admin)["code"], cancel(db, car, admin)["code"]) == (code, code)
    assert db.scalar("select count(*) from public.audit_logs") == audit


def test_a_reason_longer_than_500_characters_is_refused(db: Db) -> None:
    admin, driver = create_user(db, admin=True), create_user(db)
    car = create_car(db)
    book(db, car, driver)
    before = _snapshot(db, car)
    assert release(db, car, admin, "x" * 501)["code"] == "invalid_reason"
    assert _snapshot(db, car) == before


def test_anon_cannot_execute_and_the_helper_is_not_callable(db: Db) -> None:
    car = create_car(db)
    for sql in ("select public.release_car(%s)", "select public.cancel_booking(%s)"):
        with connect_as(db, "anon") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql, (str(car),))
    with (
        connect_as(db, "authenticated", create_user(db, admin=True)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("select private.end_booking(%s, null, false)", (str(car),))


def test_admin_bookings_names_the_booker_for_admins_only(db: Db) -> None:
    admin = create_user(db, admin=True)
    driver = create_user(db, email="driver-lifecycle@example.test")
    booked, free = create_car(db), create_car(db)
    book(db, booked, driver)
    with connect_as(db, "authenticated", admin) as conn:
        rows = conn.execute("select car_id, booked_by, booker_email from public.admin_bookings()").fetchall()
    assert rows == [(booked, driver, "driver-lifecycle@example.test")]
    assert free not in {r[0] for r in rows}
    with (
        connect_as(db, "authenticated", driver) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="for admins only"),
    ):
        conn.execute("select * from public.admin_bookings()")


def test_only_an_admin_deletes_and_only_an_available_car(db: Db) -> None:
    admin, driver = create_user(db, admin=True), create_user(db)
    free, taken = create_car(db), create_car(db)
    book(db, taken, driver)
    with connect_as(db, "authenticated", driver) as conn:
        assert conn.execute("delete from public.cars where id = %s returning id", (free,)).fetchall() == []
    with connect_as(db, "authenticated", admin) as conn:
        assert conn.execute("delete from public.cars where id = %s returning id", (taken,)).fetchall() == []
        assert conn.execute("delete from public.cars where id = %s returning id", (free,)).fetchall() == [
            (free,)
        ]
    assert db.scalar("select count(*) from public.cars where id in (%s, %s)", (free, taken)) == 1
    with db.connect() as conn:
        deleted = conn.execute(
            "select actor_id, old_data->>'id' from public.audit_logs where action = 'car.delete'"
        ).fetchall()
    assert deleted == [(admin, str(free))]
    with connect_as(db, "anon") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("delete from public.cars where id = %s", (free,))


def test_an_update_that_changes_nothing_writes_no_audit_row(db: Db) -> None:
    admin = create_user(db, admin=True)
    car = create_car(db, published=True)
    before = _snapshot(db, car)
    with connect_as(db, "authenticated", admin) as conn:
        conn.execute("update public.cars set is_published = true where id = %s", (car,))
    assert _snapshot(db, car) == before  # no audit row, and updated_at did not move
    with connect_as(db, "authenticated", admin) as conn:
        conn.execute("update public.cars set is_published = false where id = %s", (car,))
    after = _snapshot(db, car)
    assert after[1] == (before[1][0] + 1,) and after[0][3] > before[0][3]


def test_a_release_racing_bookers_ends_with_exactly_one_new_winner(db: Db) -> None:
    n = 30
    admin, first = create_user(db, admin=True), create_user(db)
    car = create_car(db)
    book(db, car, first)
    users = [create_user(db) for _ in range(n)]
    conns: list[psycopg.Connection[Any]] = []
    for user in [admin, *users]:
        conn = db.connect()
        as_role(conn, "authenticated", user)
        conns.append(conn)
    barrier = threading.Barrier(n + 1)
    released = threading.Event()
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def releaser(conn: psycopg.Connection[Any]) -> None:
        try:
            barrier.wait(timeout=60)
            row = conn.execute("select public.release_car(%s, 'race')", (str(car),)).fetchone()
            released.set()  # autocommit: the release has committed
            assert row is not None
            with lock:
                results.append(row[0])
        except BaseException as exc:
            with lock:
                errors.append(exc)

    def booker(conn: psycopg.Connection[Any]) -> None:
        # Each booker tries until it has an answer given after the release committed (or
        # wins): every one of them races the released car, however the threads run.
        try:
            barrier.wait(timeout=60)
            while True:
                after_release = released.is_set()
                row = conn.execute("select public.book_car_atomic(%s)", (str(car),)).fetchone()
                assert row is not None
                if row[0]["code"] == "booked" or after_release:
                    break
            with lock:
                results.append(row[0])
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=releaser, args=(conns[0],))]
    threads += [threading.Thread(target=booker, args=(c,)) for c in conns[1:]]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        for c in conns:
            c.close()

    assert errors == []
    codes = Counter(r["code"] for r in results)
    assert codes["released"] == 1 and codes["booked"] == 1, codes
    assert codes["already_booked"] == n - 1, codes
    winner = next(r for r in results if r["code"] == "booked")
    assert db.scalar("select booked_by::text from public.cars where id = %s", (car,)) == winner["booked_by"]
    actions = db.scalar(
        "select array_agg(action order by id) from public.audit_logs where record_id = %s and action <> 'car.insert'",
        (car,),
    )
    assert actions == ["car.booked", "car.released", "car.booked"]
