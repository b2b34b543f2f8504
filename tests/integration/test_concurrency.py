"""Real connections racing for cars: exactly one winner per car, zero errors."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from tests.helpers import Db, as_role, create_car


def _users(db: Db, n: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    with db.connect() as conn, conn.cursor() as cur:
        cur.executemany(
            "insert into auth.users (id, email) values (%s, %s)",
            [(u, f"{u.hex}@race.test") for u in ids],
        )
    return ids


def test_100_connections_one_car_exactly_one_winner(db: Db) -> None:
    n = 100
    car = create_car(db)
    users = _users(db, n)
    conns: list[psycopg.Connection[Any]] = []
    for user in users:
        conn = db.connect()
        as_role(conn, "authenticated", user)
        conns.append(conn)
    barrier = threading.Barrier(n)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def attempt(conn: psycopg.Connection[Any]) -> None:
        try:
            barrier.wait(timeout=60)
            row = conn.execute("select public.book_car_atomic(%s)", (str(car),)).fetchone()
            assert row is not None
            with lock:
                results.append(row[0])
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(c,)) for c in conns]
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
    assert codes == {"booked": 1, "already_booked": n - 1}
    winner = next(r for r in results if r["code"] == "booked")
    assert db.scalar("select booked_by::text from public.cars where id = %s", (car,)) == winner["booked_by"]
    assert all(r["message"] == "Already booked. Be fast next time." for r in results if not r["success"])
    assert db.scalar("select count(*) from public.audit_logs where action = 'car.booked'") == 1


def test_1000_attempts_over_200_cars_each_booked_exactly_once(db: Db) -> None:
    cars = [create_car(db) for _ in range(200)]
    users = _users(db, 50)
    attempts = [(car, users[(i * 7 + k) % len(users)]) for i, car in enumerate(cars) for k in range(5)]
    random.Random(42).shuffle(attempts)
    local = threading.local()
    made: list[psycopg.Connection[Any]] = []

    def attempt(item: tuple[uuid.UUID, uuid.UUID]) -> tuple[uuid.UUID, uuid.UUID, dict[str, Any]]:
        car, user = item
        if not hasattr(local, "conn"):
            local.conn = db.connect()
            made.append(local.conn)
        as_role(local.conn, "authenticated", user)
        row = local.conn.execute("select public.book_car_atomic(%s)", (str(car),)).fetchone()
        assert row is not None
        local.conn.execute("reset role")
        return car, user, row[0]

    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            outcomes = list(pool.map(attempt, attempts))
    finally:
        for c in made:
            c.close()

    assert len(outcomes) == 1000
    winners: dict[uuid.UUID, list[uuid.UUID]] = {}
    for car, user, result in outcomes:
        assert result["code"] in {"booked", "already_booked", "already_yours"}, result
        if result["code"] == "booked":
            winners.setdefault(car, []).append(user)
    assert len(winners) == 200
    assert all(len(w) == 1 for w in winners.values())
    with db.connect() as conn:
        booked = dict(conn.execute("select id, booked_by from public.cars").fetchall())
    assert booked == {car: w[0] for car, w in winners.items()}
    assert db.scalar("select count(*) from public.audit_logs where action = 'car.booked'") == 200
