"""The row-level security matrix: anon, a user, another user and an admin, against
select / insert / update / delete on cars, audit_logs and user_roles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.helpers import Db, book, connect_as, create_car, create_user

ROLES = ("anon", "user", "other", "admin")


@dataclass
class World:
    db: Db
    users: dict[str, uuid.UUID]
    cars: dict[str, uuid.UUID]

    def connect(self, who: str) -> Any:
        if who == "anon":
            return connect_as(self.db, "anon")
        return connect_as(self.db, "authenticated", self.users[who])

    def snapshot(self) -> tuple[Any, ...]:
        with self.db.connect() as conn:
            return tuple(
                conn.execute(q).fetchall()
                for q in (
                    "select * from public.cars order by id",
                    "select * from public.audit_logs order by id",
                    "select * from public.user_roles order by user_id",
                )
            )


@pytest.fixture
def world(db: Db) -> World:
    users = {"user": create_user(db), "other": create_user(db), "admin": create_user(db, admin=True)}
    cars = {
        "available": create_car(db),
        "unpublished": create_car(db, published=False),
        "booked_by_user": create_car(db),
    }
    assert book(db, cars["booked_by_user"], users["user"])["code"] == "booked"
    return World(db=db, users=users, cars=cars)


def _attempt(world: World, who: str, sql: str, params: Any = None) -> int | str:
    """Rows affected, or 'denied' when the database refused the statement."""
    with world.connect(who) as conn:
        try:
            cur = conn.execute(sql, params)
            return cur.rowcount
        except psycopg.errors.InsufficientPrivilege:
            return "denied"


# select ------------------------------------------------------------------------------
VISIBLE_CARS = {
    "anon": {"available"},
    "user": {"available", "booked_by_user"},
    "other": {"available"},
    "admin": {"available", "unpublished", "booked_by_user"},
}


@pytest.mark.parametrize("who", ROLES)
def test_select_cars(world: World, who: str) -> None:
    with world.connect(who) as conn:
        seen = {row[0] for row in conn.execute("select id from public.cars").fetchall()}
    assert seen == {world.cars[name] for name in VISIBLE_CARS[who]}


@pytest.mark.parametrize("who", ROLES)
def test_select_audit_logs(world: World, who: str) -> None:
    total = world.db.scalar("select count(*) from public.audit_logs")
    with world.connect(who) as conn:
        row = conn.execute("select count(*) from public.audit_logs").fetchone()
    assert row is not None
    assert row[0] == (total if who == "admin" else 0)


@pytest.mark.parametrize("who", ROLES)
def test_select_user_roles(world: World, who: str) -> None:
    with world.connect(who) as conn:
        seen = {r[0] for r in conn.execute("select user_id from public.user_roles").fetchall()}
    # Only the admin has a role row; the admin sees it, nobody else sees anything.
    assert seen == ({world.users["admin"]} if who == "admin" else set())


# insert ------------------------------------------------------------------------------
INSERT_CAR = (
    "insert into public.cars (make, model, year, image_path, price_in_paise, currency)"
    " values ('Kia', 'Sonet', 2024, 'cars/k.png', 100, 'INR')"
)


@pytest.mark.parametrize("who", ROLES)
def test_insert_cars(world: World, who: str) -> None:
    before = world.db.scalar("select count(*) from public.cars")
    outcome = _attempt(world, who, INSERT_CAR)
    after = world.db.scalar("select count(*) from public.cars")
    assert (outcome, after - before) == ((1, 1) if who == "admin" else ("denied", 0))


@pytest.mark.parametrize("who", ROLES)
def test_insert_audit_logs(world: World, who: str) -> None:
    before = world.snapshot()
    outcome = _attempt(
        world, who, "insert into public.audit_logs (action, table_name) values ('forged', 'cars')"
    )
    assert (outcome, world.snapshot() == before) == ("denied", True)


@pytest.mark.parametrize("who", ROLES)
def test_insert_user_roles(world: World, who: str) -> None:
    before = world.snapshot()
    outcome = _attempt(
        world,
        who,
        "insert into public.user_roles (user_id, role) values (%s, 'admin')",
        (world.users.get(who, world.users["user"]),),
    )
    assert (outcome, world.snapshot() == before) == ("denied", True)


# update ------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ROLES)
def test_update_cars(world: World, who: str) -> None:
    outcome = _attempt(
        world, who, "update public.cars set model = 'Changed' where id = %s", (world.cars["available"],)
    )
    model = world.db.scalar("select model from public.cars where id = %s", (world.cars["available"],))
    if who == "admin":
        assert (outcome, model) == (1, "Changed")
    else:
        assert outcome in (0, "denied") and model == "Nexon"


@pytest.mark.parametrize("who", ROLES)
def test_update_audit_logs(world: World, who: str) -> None:
    before = world.snapshot()
    outcome = _attempt(world, who, "update public.audit_logs set action = 'tampered'")
    assert (outcome, world.snapshot() == before) == ("denied", True)


@pytest.mark.parametrize("who", ROLES)
def test_update_user_roles(world: World, who: str) -> None:
    before = world.snapshot()
    outcome = _attempt(world, who, "update public.user_roles set created_at = now()")
    assert (outcome, world.snapshot() == before) == ("denied", True)


# delete ------------------------------------------------------------------------------
@pytest.mark.parametrize("table", ["audit_logs", "user_roles"])
@pytest.mark.parametrize("who", ROLES)
def test_delete_is_refused_for_every_api_role(world: World, who: str, table: str) -> None:
    before = world.snapshot()
    outcome = _attempt(world, who, f"delete from public.{table}")
    assert (outcome, world.snapshot() == before) == ("denied", True)


#: What `delete from public.cars` does per role (20250922000000): anon has no grant; a
#: user's delete matches no row under RLS; an admin's deletes only cars nobody booked.
DELETED_CARS: dict[str, int | str] = {"anon": "denied", "user": 0, "other": 0, "admin": 2}


@pytest.mark.parametrize("who", ROLES)
def test_only_an_admin_deletes_cars_and_never_a_booked_one(world: World, who: str) -> None:
    before = world.snapshot()
    outcome = _attempt(world, who, "delete from public.cars")
    assert outcome == DELETED_CARS[who]
    with world.db.connect() as conn:
        left = {row[0] for row in conn.execute("select id from public.cars").fetchall()}
    if who == "admin":
        assert left == {world.cars["booked_by_user"]}  # the booked car stays, with its booking
    else:
        assert world.snapshot() == before


# booking columns ---------------------------------------------------------------------
@pytest.mark.parametrize("who", ["user", "other"])
def test_non_admin_cannot_book_by_direct_update(world: World, who: str) -> None:
    before = world.snapshot()
    outcome = _attempt(
        world,
        who,
        "update public.cars set booking_status = 'booked', booked_by = %s, booked_at = now() where id = %s",
        (world.users[who], world.cars["available"]),
    )
    assert (outcome, world.snapshot() == before) == (0, True)


def test_booker_cannot_release_or_hand_over_own_booking_by_update(world: World) -> None:
    before = world.snapshot()
    outcome = _attempt(
        world,
        "user",
        "update public.cars set booked_by = %s where id = %s",
        (world.users["other"], world.cars["booked_by_user"]),
    )
    assert (outcome, world.snapshot() == before) == (0, True)


def test_admin_may_release_a_booking_and_it_is_audited(world: World) -> None:
    car = world.cars["booked_by_user"]
    outcome = _attempt(
        world,
        "admin",
        "update public.cars set booking_status = 'available', booked_by = null, booked_at = null where id = %s",
        (car,),
    )
    assert outcome == 1
    actor = world.db.scalar(
        "select actor_id from public.audit_logs where record_id = %s and action = 'car.update'", (car,)
    )
    assert actor == world.users["admin"]


@pytest.mark.parametrize("table", ["cars", "audit_logs", "user_roles"])
@pytest.mark.parametrize("who", ROLES)
def test_truncate_is_refused_for_every_api_role(world: World, who: str, table: str) -> None:
    before = world.snapshot()
    outcome = _attempt(world, who, f"truncate public.{table} cascade")
    assert (outcome, world.snapshot() == before) == ("denied", True)


@pytest.mark.parametrize(
    "sql",
    [
        "insert into public.audit_logs (action, table_name) values ('car.forged', 'cars')",
        "update public.audit_logs set action = 'car.rewritten'",
        "delete from public.audit_logs",
        "truncate public.audit_logs",
    ],
)
def test_service_role_cannot_write_the_audit_trail(world: World, sql: str) -> None:
    """service_role bypasses RLS; only its grants keep the trail append-only."""
    before = world.snapshot()
    with connect_as(world.db, "service_role") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(sql)
    assert world.snapshot() == before
