"""Every ops command through a real PgBouncer in transaction mode, with other clients
sharing its few server connections: nothing may depend on the session."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
from typer.testing import CliRunner

from carbook_cli import app
from carbook_sdk import Database
from tests.helpers import Db, book, create_car, create_user

from .conftest import PgBouncer

runner = CliRunner()
BOOKING = (
    "select id, booking_status, booked_by, booked_at, price_in_paise, currency from public.cars order by id"
)


class Traffic:
    """Other clients of the pooler, each asking on every turn whether ops left anything
    behind on the server connection it was handed."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url = url
        self.stop = threading.Event()
        self.queries = 0
        self.leaks: list[tuple[Any, ...]] = []
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def _run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True, prepare_threshold=None) as conn:
                while not self.stop.is_set():
                    row = conn.execute(
                        """select current_setting('pgrst.db_schemas', true),
                                  current_setting('carbook.verify_mode', true),
                                  to_regprocedure('pg_temp.carbook_checks()')::text"""
                    ).fetchone()
                    assert row is not None
                    if any(v not in (None, "") for v in row):
                        self.leaks.append(row)
                    self.queries += 1
                    time.sleep(0.002)
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.errors.append(exc)


def _booking_data(db: Db) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(BOOKING).fetchall()


def test_every_db_command_five_times_through_the_pooler(db: Db, pgbouncer: PgBouncer, tmp_path: Path) -> None:
    users = [create_user(db) for _ in range(3)]
    cars = [create_car(db, price=1000 * (i + 1), currency="JPY") for i in range(5)]
    for user, car in zip(users, cars, strict=False):
        assert book(db, car, user)["code"] == "booked"
    before = _booking_data(db)
    with db.connect() as conn:
        # A lock left behind on some server connection fails the test instead of hanging it.
        conn.execute(f"alter database {db.name} set lock_timeout = '10s'")
    url = pgbouncer.url(db.name)
    backups = str(tmp_path / "backups")
    commands = [
        ("db", "status"),
        ("db", "migrate", "--backup-dir", backups),
        ("db", "verify"),
        ("db", "verify", "--lint"),
        ("db", "rollback", "--yes", "--force", "--backup-dir", backups),
        ("db", "migrate", "--backup-dir", backups),  # restores the rollback's backup
    ]
    with Traffic(pgbouncer.url(db.name)) as traffic:
        for _ in range(5):
            for args in commands:
                result = runner.invoke(app, [*args, "--db-url", url])
                assert result.exit_code == 0, (args, result.output)
            assert "Restored 3 booking(s) and 5 price(s)" in result.stdout
            assert _booking_data(db) == before
    assert traffic.errors == [] and traffic.leaks == []
    assert traffic.queries > 20  # the traffic really ran alongside
    assert db.scalar("select count(*) from pg_locks where locktype = 'advisory'") == 0
    assert _booking_data(db) == before
    assert len(list(Path(backups).glob("*.json.restored"))) == 5


def test_300_concurrent_bookings_through_the_pooler(db: Db, pgbouncer: PgBouncer) -> None:
    """The ops connection settings (no prepared statements) with transaction-local claims:
    psycopg would otherwise prepare the booking call on one server connection and run it
    on another."""
    with db.connect() as conn:
        users = [
            r[0]
            for r in conn.execute(
                """insert into auth.users (id, email)
                   select gen_random_uuid(), 'pool-' || g || '-' || gen_random_uuid() || '@example.test'
                     from generate_series(1, 300) g
                   returning id"""
            )
        ]
    cars = [create_car(db) for _ in range(30)]
    database = Database(pgbouncer.url(db.name))

    def client(pairs: list[tuple[Any, Any]]) -> list[str]:
        codes = []
        with database.connect() as conn:
            assert conn.prepare_threshold is None
            for user, car in pairs:
                with conn.transaction():
                    conn.execute("set local role authenticated")
                    claims = json.dumps({"role": "authenticated", "sub": str(user)})
                    conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
                    row = conn.execute("select public.book_car_atomic(%s)", (str(car),)).fetchone()
                assert row is not None
                codes.append(row[0]["code"])
        return codes

    pairs = [(users[i], cars[i % len(cars)]) for i in range(300)]
    # 30 clients of 10 bookings each, every car wanted by 10 of them at once.
    with ThreadPoolExecutor(30) as pool:
        codes = [
            c for chunk in pool.map(client, [pairs[i : i + 10] for i in range(0, 300, 10)]) for c in chunk
        ]
    assert Counter(codes) == {"booked": 30, "already_booked": 270}
    with db.connect() as conn:
        winners = dict(conn.execute("select id, booked_by from public.cars where booking_status = 'booked'"))
        audited = conn.execute(
            "select count(*) from public.audit_logs where action = 'car.booked' and record_id = any(%s)",
            (cars,),
        ).fetchone()
    assert set(winners) == set(cars)
    assert all(winners[car] in {u for u, c in pairs if c == car} for car in cars)
    assert audited is not None and audited[0] == 30
