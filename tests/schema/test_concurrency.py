"""Real connections racing for cars: exactly one winner per car, zero errors."""

from __future__ import annotations

import random
import threading
import time
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


def _waiting_on_locks(monitor: psycopg.Connection[Any], pids: set[int]) -> set[int]:
    """Which of these backends are waiting for a lock right now."""
    rows = monitor.execute(
        """select pid from pg_catalog.pg_stat_activity
            where wait_event_type = 'Lock' and pid = any(%s)
           union
           select pid from pg_catalog.pg_locks where not granted and pid = any(%s)""",
        (list(pids), list(pids)),
    ).fetchall()
    return {r[0] for r in rows}


def test_latecomers_are_answered_without_queueing_on_the_row_lock(db: Db) -> None:
    """Read first, lock only a car that looks bookable (migration 20250920000000).

    While the winner's booking is uncommitted, a caller must wait (the car still looks
    available, so it takes the lock and decides on the row the winner leaves). Once the
    booking is committed, callers are answered from a plain read: none of them ever waits
    for a lock, however many come at once.
    """
    car = create_car(db)
    winner, second, *late = _users(db, 2 + 50)
    monitor = db.connect()
    first = db.connect()
    as_role(first, "authenticated", winner)
    first.autocommit = False
    try:
        result = first.execute("select public.book_car_atomic(%s)", (str(car),)).fetchone()
        assert result is not None and result[0]["code"] == "booked"  # uncommitted, row locked

        blocked = db.connect()
        as_role(blocked, "authenticated", second)
        blocked_pid = blocked.info.backend_pid
        answer: list[dict[str, Any]] = []
        caller = threading.Thread(
            target=lambda: answer.append(
                blocked.execute("select public.book_car_atomic(%s)", (str(car),)).fetchone()[0]  # type: ignore[index]
            )
        )
        caller.start()
        deadline = time.monotonic() + 10
        while blocked_pid not in _waiting_on_locks(monitor, {blocked_pid}):
            assert time.monotonic() < deadline, (
                "the second caller should wait while the booking is uncommitted"
            )
            assert caller.is_alive(), f"the second caller did not wait: {answer}"
            time.sleep(0.01)
        first.commit()
        caller.join(10)
        assert not caller.is_alive()
        assert answer[0]["code"] == "already_booked"
        blocked.close()
    finally:
        first.close()

    conns = []
    for user in late:
        conn = db.connect()
        as_role(conn, "authenticated", user)
        conns.append(conn)
    pids = {c.info.backend_pid for c in conns}
    start = threading.Barrier(len(conns) + 1)
    done = threading.Event()
    codes: Counter[str] = Counter()
    lock = threading.Lock()

    def latecomer(conn: psycopg.Connection[Any]) -> None:
        start.wait()
        for _ in range(10):
            row = conn.execute("select public.book_car_atomic(%s)", (str(car),)).fetchone()
            assert row is not None
            with lock:
                codes[row[0]["code"]] += 1

    seen_waiting: set[int] = set()
    samples = 0
    with ThreadPoolExecutor(max_workers=len(conns)) as pool:
        futures = [pool.submit(latecomer, c) for c in conns]
        start.wait()
        while not all(f.done() for f in futures):
            seen_waiting |= _waiting_on_locks(monitor, pids)
            samples += 1
        for f in futures:
            f.result()
    done.set()
    for conn in conns:
        conn.close()
    monitor.close()
    assert samples > 0
    assert codes == Counter({"already_booked": 500})
    assert seen_waiting == set(), f"{len(seen_waiting)} latecomers queued on the row lock"
    assert db.scalar("select count(*) from public.audit_logs where action = 'car.booked'") == 1


def test_a_rolled_back_winner_leaves_the_car_to_the_next_caller(db: Db) -> None:
    car = create_car(db)
    winner, next_user = _users(db, 2)
    conn = db.connect()
    as_role(conn, "authenticated", winner)
    conn.autocommit = False
    row = conn.execute("select public.book_car_atomic(%s)", (str(car),)).fetchone()
    assert row is not None and row[0]["code"] == "booked"
    conn.rollback()  # the winner's transaction fails after the booking
    conn.close()
    assert db.scalar("select booking_status from public.cars where id = %s", (car,)) == "available"
    with db.connect() as other:
        as_role(other, "authenticated", next_user)
        got = other.execute("select public.book_car_atomic(%s)", (str(car),)).fetchone()
    assert got is not None and got[0]["code"] == "booked" and got[0]["booked_by"] == str(next_user)
    assert db.scalar("select count(*) from public.audit_logs where action = 'car.booked'") == 1
