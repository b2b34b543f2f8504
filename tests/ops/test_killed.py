"""`carbook db migrate` and `carbook db rollback` SIGKILLed for real, at many moments: by
time over the whole run, while they wait inside their transaction, and the moment they
write each file. After every kill and one more `db migrate`, the schema verifies and no
booking or price differs from before. The database is checked, never the exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from carbook_sdk import Database
from tests.helpers import Db, book, create_car, create_user

from .conftest import PgBouncer

ROOT = Path(__file__).resolve().parents[2]
#: The booking feature's migrations: what a rollback undoes, and a migrate re-applies
#: (as the rollback file's own header names them).
FEATURE = set(Database("postgresql://nobody@127.0.0.1:1/none").undone())
BOOKING = (
    "select id, booking_status, booked_by, booked_at, price_in_paise, currency from public.cars order by id"
)


def _fleet(db: Db, n: int = 120) -> list[tuple[Any, ...]]:
    """n cars at prices of their own in three currencies, every other one booked."""
    users = [create_user(db) for _ in range(4)]
    for i in range(n):
        car = create_car(db, price=1000 + 37 * i, currency=("INR", "USD", "JPY")[i % 3])
        if i % 2 == 0:
            assert book(db, car, users[i % 4])["code"] == "booked"
    return _booking_data(db)


def _booking_data(db: Db) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(BOOKING).fetchall()


def _cli(url: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "carbook_cli", "db", *args, "--db-url", url],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )


def _kill_when(process: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 60) -> bool:
    """SIGKILL ``process`` the moment ``ready()``; False if it ended first."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if ready():
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            return True
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the command neither ended nor reached the moment to kill it")
        time.sleep(0.001)
    return False


def _after_seconds(seconds: float) -> Callable[[], bool]:
    at = time.monotonic() + seconds
    return lambda: time.monotonic() >= at


def _file_appears(folder: Path, pattern: str) -> Callable[[], bool]:
    return lambda: any(folder.glob(pattern))


def _waits_on_a_lock(db: Db) -> Callable[[], bool]:
    """True once a backend of this database other than ours waits for a lock."""

    def check() -> bool:
        with db.connect() as conn:
            row = conn.execute(
                """select count(*) from pg_stat_activity
                    where datname = current_database() and wait_event_type = 'Lock'
                      and pid <> pg_backend_pid()"""
            ).fetchone()
        return bool(row and row[0])

    return check


@contextmanager
def _holding(db: Db, sql: str) -> Iterator[None]:
    """Another session holds a lock (``sql``) until the block ends."""
    conn = psycopg.connect(db.url)
    try:
        conn.execute(sql)
        yield
    finally:
        conn.rollback()
        conn.close()


@contextmanager
def _stalled_commit(db: Db) -> Iterator[None]:
    """Make a migrate's or a rollback's COMMIT wait (a deferred trigger on the history
    table, fired at commit, waits for an advisory lock this block holds): a kill then
    lands after every statement and the commit request, before the commit is durable. The
    server finishes a commit it was asked for, so this kill leaves the new schema."""
    with db.connect() as conn:
        conn.execute(
            """create function public.carbook_test_stall() returns trigger language plpgsql as $$
               begin perform pg_advisory_xact_lock(424242); return null; end $$;
               create constraint trigger carbook_test_stall after insert or delete
                 on supabase_migrations.schema_migrations deferrable initially deferred
                 for each row execute function public.carbook_test_stall()"""
        )
    try:
        with _holding(db, "select pg_advisory_xact_lock(424242)"):
            yield
    finally:
        with db.connect() as conn:
            conn.execute(
                """drop trigger carbook_test_stall on supabase_migrations.schema_migrations;
                   drop function public.carbook_test_stall()"""
            )


def _settle(db: Db) -> None:
    """A killed client's server session ends (or, behind a pooler, goes idle) when the
    server notices; wait for that."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with db.connect() as conn:
            row = conn.execute(
                """select count(*) from pg_stat_activity
                    where datname = current_database() and pid <> pg_backend_pid()
                      and state <> 'idle'"""
            ).fetchone()
        if row == (0,):
            return
        time.sleep(0.05)
    raise AssertionError("a killed command's session is still open")


def _old_or_new(db: Db, before: list[tuple[Any, ...]], pending_before: set[str]) -> str:
    """Right after a kill: the schema as it was before the run, or fully migrated with
    every booking and price back; never in between."""
    _settle(db)
    database = Database(db.url)
    pending = {m.version for m in database.status().pending}
    if pending == pending_before:
        return "old"
    assert pending == set(), f"half migrated: {sorted(pending)} still pending of {sorted(pending_before)}"
    assert database.verify().ok
    assert _booking_data(db) == before
    return "new"


def _heals(db: Db, before: list[tuple[Any, ...]], backups: Path, url: str | None = None) -> Database:
    """One more `db migrate`: then the schema verifies and every booking and price is back."""
    _settle(db)
    database = Database(url or db.url)
    database.migrate(backup_dir=backups)
    assert not database.status().pending
    assert Database(db.url).verify().ok
    assert _booking_data(db) == before
    return database


def _duration(command: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    assert command.wait(timeout=120) == 0
    return time.monotonic() - started


@pytest.mark.slow
def test_a_killed_migrate_never_frees_a_car_or_changes_a_price(db: Db, tmp_path: Path) -> None:
    before = _fleet(db)
    backups = tmp_path / "backups"
    database = Database(db.url)
    database.rollback(force=True, backup_dir=backups)
    # How long a whole run takes here, to spread the kills over it.
    whole = _duration(_cli(db.url, "migrate", "--backup-dir", str(backups)))
    assert _booking_data(db) == before
    moments: list[tuple[str, Callable[[], Any]]] = [
        (f"{f:.0%} of a run", lambda f=f: _after_seconds(whole * f))
        for f in (0.2, 0.4, 0.55, 0.7, 0.8, 0.9, 0.97)
    ]
    killed = 0
    outcomes: list[str] = []
    pending_before: set[str] = set()
    for name, moment in [
        *moments,
        ("waiting for the cars table (the booking migration's first statement)", None),
        ("waiting for the backup's row (about to restore it)", None),
        ("at the commit, every statement done", None),
        ("writing the .restored file", lambda: _file_appears(backups, "*.restored")),
    ]:
        database.rollback(force=True, backup_dir=backups)
        for marker in backups.glob("*.restored"):
            marker.unlink()
        pending_before = {m.version for m in database.status().pending}
        run = _cli(db.url, "migrate", "--backup-dir", str(backups))
        if name.startswith("waiting for the cars"):
            with _holding(db, "lock table public.cars in access share mode"):
                # The migration's alter table waits behind this session's lock.
                killed += _kill_when(run, _waits_on_a_lock(db))
        elif name.startswith("waiting for the backup"):
            with _holding(
                db, "select id from carbook_ops.rollback_backups where restored_at is null for update"
            ):
                killed += _kill_when(run, _waits_on_a_lock(db))
        elif name.startswith("at the commit"):
            with _stalled_commit(db):
                killed += _kill_when(run, _waits_on_a_lock(db))
        else:
            assert moment is not None
            killed += _kill_when(run, moment())
        outcomes.append(_old_or_new(db, before, pending_before))
        _heals(db, before, backups)
    # The kills at a chosen moment always land (a time-based one may come after the end on
    # a machine faster now than when the run was timed), and they leave both outcomes.
    assert killed >= 3, killed
    assert {"old", "new"} <= set(outcomes), outcomes


@pytest.mark.slow
def test_a_killed_rollback_leaves_the_old_schema_or_the_new_and_loses_nothing(db: Db, tmp_path: Path) -> None:
    before = _fleet(db)
    backups = tmp_path / "backups"
    whole = _duration(_cli(db.url, "rollback", "--yes", "--force", "--backup-dir", str(backups)))
    _heals(db, before, backups)
    killed = 0
    outcomes: list[str] = []
    for name, moment in [
        *[(f"{f:.0%}", lambda f=f: _after_seconds(whole * f)) for f in (0.3, 0.6, 0.8, 0.9, 0.97)],
        ("writing its backup file", None),
        ("waiting for the cars lock", None),
        ("at the commit, every statement done", None),
    ]:
        existing = set(backups.glob("*.json"))
        run = _cli(db.url, "rollback", "--yes", "--force", "--backup-dir", str(backups))
        if name.startswith("waiting"):
            with _holding(db, "lock table public.cars in row exclusive mode"):
                killed += _kill_when(run, _waits_on_a_lock(db))
        elif name.startswith("at the commit"):
            with _stalled_commit(db):
                killed += _kill_when(run, _waits_on_a_lock(db))
        elif name.startswith("writing"):
            killed += _kill_when(run, lambda existing=existing: bool(set(backups.glob("*.json")) - existing))
        else:
            assert moment is not None
            killed += _kill_when(run, moment())
        _settle(db)
        pending = {m.version for m in Database(db.url).status().pending}
        # Rolled back whole (the feature's three migrations pending, its backup kept by the
        # database), or not at all (the data untouched).
        assert pending in (set(), FEATURE), pending
        if pending:
            assert (
                db.scalar("select count(*) from carbook_ops.rollback_backups where restored_at is null") >= 1
            )
        else:
            assert _booking_data(db) == before
        outcomes.append("rolled back" if pending else "not rolled back")
        _heals(db, before, backups)
    assert killed >= 2, killed  # the lock and the commit: chosen moments always land
    assert {"rolled back", "not rolled back"} <= set(outcomes), outcomes


def test_a_killed_migrate_through_a_transaction_pooler_leaves_the_old_schema(
    db: Db, pgbouncer: PgBouncer, tmp_path: Path
) -> None:
    before = _fleet(db, 30)
    backups = tmp_path / "backups"
    url = pgbouncer.url(db.name)
    Database(url).rollback(force=True, backup_dir=backups)
    run = _cli(url, "migrate", "--backup-dir", str(backups))
    with _holding(db, "select id from carbook_ops.rollback_backups where restored_at is null for update"):
        assert _kill_when(run, _waits_on_a_lock(db))
    # The pooler's server connection rolled back with the client gone: still rolled back.
    _settle(db)
    assert Database(db.url).status().pending
    assert db.scalar("select to_regprocedure('public.book_car_atomic(uuid)')") is None
    _heals(db, before, backups, url=url)
