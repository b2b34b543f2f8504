"""The availability channel's database half: what the trigger on public.cars sends to
`cars:availability`, and who RLS on realtime.messages lets read or write that topic."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from ..helpers import Db, book, connect_as, create_car, create_user

TOPIC = "cars:availability"
#: What any visitor may know of a car; nothing else may appear in an event.
VISIBLE = {"id", "kind", "listed", "status", "price_in_paise", "currency", "version"}


def _events(db: Db, car: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    with db.connect() as conn:
        rows = conn.execute(
            """select event, payload from realtime.messages
                where topic = %s and private and payload->>'id' = %s order by payload->>'version'""",
            (TOPIC, str(car)),
        ).fetchall()
    return [(e, p) for e, p in rows]


def test_a_booking_and_its_release_are_sent_with_what_a_visitor_may_know(db: Db) -> None:
    user = create_user(db)
    car = create_car(db, price=250000)
    assert book(db, car, user)["code"] == "booked"
    with db.connect() as conn:  # a release, as an admin would make it
        conn.execute(
            "update public.cars set booking_status = 'available', booked_by = null, booked_at = null where id = %s",
            (car,),
        )
    events = _events(db, car)
    assert [e for e, _ in events] == ["published", "booked", "released"]  # created listed
    events = events[1:]
    for _, payload in events:
        assert set(payload) == VISIBLE, "never who booked, nothing but the listing's fields"
        assert str(user) not in str(payload)
    assert events[0][1]["status"] == "booked" and events[0][1]["listed"] is False
    assert events[1][1]["listed"] is True and events[1][1]["price_in_paise"] == 250000
    assert events[0][1]["version"] < events[1][1]["version"]


def test_publish_unpublish_and_price_changes_are_sent_and_nothing_else(db: Db) -> None:
    car = create_car(db, published=False)
    with db.connect() as conn:
        conn.execute("update public.cars set price_in_paise = 1 where id = %s", (car,))  # unpublished: secret
        conn.execute("update public.cars set is_published = true where id = %s", (car,))
        conn.execute("update public.cars set price_in_paise = 99900, currency = 'USD' where id = %s", (car,))
        conn.execute("update public.cars set model = 'Punch' where id = %s", (car,))  # not a listing change
        conn.execute("update public.cars set is_published = false where id = %s", (car,))
        conn.execute("delete from public.cars where id = %s", (car,))  # already unlisted: nothing
    events = _events(db, car)
    assert [e for e, _ in events] == ["published", "price_changed", "unpublished"]
    assert events[1][1]["currency"] == "USD" and events[1][1]["price_in_paise"] == 99900


def test_a_booking_that_fails_sends_nothing(db: Db) -> None:
    first, second = create_user(db), create_user(db)
    car = create_car(db)
    assert book(db, car, first)["code"] == "booked"
    assert book(db, car, second)["code"] == "already_booked"
    assert [e for e, _ in _events(db, car)] == ["published", "booked"]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_every_visitor_may_read_the_topic_and_nobody_may_write_it(db: Db, role: str) -> None:
    car = create_car(db)
    with db.connect() as conn:
        conn.execute("update public.cars set price_in_paise = 5 where id = %s", (car,))
    user = create_user(db) if role == "authenticated" else None
    with connect_as(db, role, user) as conn:
        conn.execute("select set_config('realtime.topic', %s, false)", (TOPIC,))
        seen = conn.execute("select count(*) from realtime.messages where payload->>'id' = %s", (str(car),))
        assert seen.fetchone() == (2,)  # published (created listed), price_changed
        conn.execute("select set_config('realtime.topic', 'another-topic', false)")
        assert conn.execute("select count(*) from realtime.messages").fetchone() == (0,)
        conn.execute("select set_config('realtime.topic', %s, false)", (TOPIC,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "insert into realtime.messages (topic, extension, event, payload, private) "
                "values (%s, 'broadcast', 'booked', '{}', true)",
                (TOPIC,),
            )


def test_the_lifecycle_functions_are_heard_by_every_listing(db: Db) -> None:
    """release_car (an admin), cancel_booking (the booker) and an admin's delete, through
    the functions and policies a client uses: each is one event, saying only the listing."""
    admin, user = create_user(db, admin=True), create_user(db)
    released, cancelled, deleted = create_car(db), create_car(db), create_car(db)
    for car in (released, cancelled):
        assert book(db, car, user)["code"] == "booked"
    with connect_as(db, "authenticated", admin) as conn:
        row = conn.execute("select public.release_car(%s, 'payment failed')", (released,)).fetchone()
        assert row is not None and row[0]["code"] == "released"
        assert conn.execute("delete from public.cars where id = %s", (deleted,)).rowcount == 1
    with connect_as(db, "authenticated", user) as conn:
        row = conn.execute("select public.cancel_booking(%s)", (cancelled,)).fetchone()
        assert row is not None and row[0]["code"] == "cancelled"
    assert [e for e, _ in _events(db, released)] == ["published", "booked", "released"]
    assert [e for e, _ in _events(db, cancelled)] == ["published", "booked", "released"]
    assert [e for e, _ in _events(db, deleted)] == ["published", "unpublished"]
    for car in (released, cancelled):
        assert all(str(user) not in str(p) for _, p in _events(db, car))
