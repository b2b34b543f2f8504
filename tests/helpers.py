"""The tests' one set of helpers and factories: users, cars and bookings made on a real
database as the platform or as API roles; clients for a stack; the stack factories of
``carbook_stack.testing`` (which the benchmarks share); the ``carbook`` command run from
a folder as a person would."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from websockets.asyncio.client import ClientConnection

from carbook_sdk import Database, supabase_dir
from carbook_stack.testing import PASSWORD, make_cars, make_users, stack_db, temporary_stack

__all__ = [
    "MIGRATIONS",
    "PASSWORD",
    "PNG",
    "Db",
    "Raw",
    "as_from_a_terminal",
    "as_role",
    "async_carbook_for",
    "book",
    "carbook_for",
    "carbook_in",
    "connect_as",
    "create_car",
    "create_user",
    "make_cars",
    "make_users",
    "stack_db",
    "supabase_client",
    "temporary_stack",
    "unique_email",
    "versions",
]

#: carbook's migrations as (version, name), in order: read from the files, never listed
#: by hand, so a new migration needs no test edited to be counted.
MIGRATIONS: list[tuple[str, str]] = [
    (path.name[:14], path.name[15:-4]) for path in sorted((supabase_dir() / "migrations").glob("*.sql"))
]


def versions(*, before: str | None = None) -> list[str]:
    """The migration versions in order (those before ``before`` only, when given)."""
    return [v for v, _ in MIGRATIONS if before is None or v < before]


@dataclass
class Db:
    """A database of the test's own."""

    name: str
    url: str

    @property
    def database(self) -> Database:
        return Database(self.url)

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)

    def scalar(self, sql: str, params: Any = None) -> Any:
        with self.connect() as conn:
            row = conn.execute(sql, params).fetchone()
            return row[0] if row else None


# Acting as API roles -----------------------------------------------------------------
def create_user(db: Db, *, admin: bool = False, email: str | None = None) -> uuid.UUID:
    """A row in auth.users (and the admin role when asked), as the platform would make it."""
    uid = uuid.uuid4()
    with db.connect() as conn:
        conn.execute(
            "insert into auth.users (id, email) values (%s, %s)",
            (uid, email or f"{uid.hex[:10]}@example.test"),
        )
        if admin:
            conn.execute("insert into public.user_roles (user_id, role) values (%s, 'admin')", (uid,))
    return uid


def create_car(
    db: Db,
    *,
    published: bool = True,
    booked_by: uuid.UUID | None = None,
    price: int = 150000,
    currency: str = "INR",
) -> uuid.UUID:
    """A car inserted by the superuser (as seed data would be)."""
    with db.connect() as conn:
        row = conn.execute(
            """insert into public.cars (make, model, year, image_path, is_published,
                                        price_in_paise, currency, booking_status, booked_by, booked_at)
               values ('Tata', 'Nexon', 2024, 'cars/x.png', %s, %s, %s, %s, %s, %s) returning id""",
            (
                published,
                price,
                currency,
                "booked" if booked_by else "available",
                booked_by,
                datetime.now(UTC) if booked_by else None,
            ),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def as_role(conn: psycopg.Connection[Any], role: str, user_id: uuid.UUID | None = None) -> None:
    """Make this connection act like a PostgREST request: the JWT's role and claims."""
    claims: dict[str, Any] = {"role": role}
    if user_id is not None:
        claims["sub"] = str(user_id)
    conn.execute(f"set role {role}")
    conn.execute("select set_config('request.jwt.claims', %s, false)", (json.dumps(claims),))


@contextmanager
def connect_as(db: Db, role: str, user_id: uuid.UUID | None = None) -> Iterator[psycopg.Connection[Any]]:
    conn = db.connect()
    try:
        as_role(conn, role, user_id)
        yield conn
    finally:
        conn.close()


def book(db: Db, car_id: uuid.UUID | str, user_id: uuid.UUID | None) -> dict[str, Any]:
    """Call book_car_atomic as a signed-in user (or as `authenticated` without a user)."""
    with connect_as(db, "authenticated", user_id) as conn:
        row = conn.execute("select public.book_car_atomic(%s)", (str(car_id),)).fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


# The local stack through plain supabase-py -------------------------------------------
def supabase_client(url: str, key: str) -> Any:
    """A plain supabase-py client (no carbook code), without background refresh threads."""
    from supabase import ClientOptions, create_client

    return create_client(url, key, options=ClientOptions(auto_refresh_token=False, persist_session=False))


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.test"


ADMIN_EMAIL, ADMIN_PASSWORD = "admin@carbook.local", "carbook-admin"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def carbook_for(stack: Any, *, service: bool = False) -> Any:
    """A carbook client for the test stack."""
    from carbook_sdk import Carbook

    s = stack.settings
    return Carbook(
        s.api_url, s.anon_key, service_role_key=s.service_role_key if service else None, db_url=s.db_url
    )


def async_carbook_for(stack: Any) -> Any:
    from carbook_sdk import AsyncCarbook

    s = stack.settings
    return AsyncCarbook(s.api_url, s.anon_key, db_url=s.db_url)


def as_from_a_terminal() -> None:
    """``preexec_fn`` for a child that a test will stop with Ctrl-C (SIGINT) as a person at
    a terminal would: SIGINT at its default disposition and not blocked, whatever the test
    process (a pytest-xdist worker that ran other tests first) left to be inherited; an
    ignored or blocked SIGINT would let the child finish as if never interrupted."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def carbook_in(folder: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """The installed ``carbook`` command run as a person would, from ``folder``."""
    return subprocess.run(
        [sys.executable, "-m", "carbook_cli", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


# Realtime by hand ----------------------------------------------------------------
class Raw:
    """Phoenix frames by hand (vsn 1.0.0): what the test sends is what the server gets."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.ref = ws, 0

    async def send(self, topic: str, event: str, payload: Any) -> str:
        self.ref += 1
        ref = str(self.ref)
        await self.ws.send(
            json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": ref})
        )
        return ref

    async def next(self, event: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), deadline - time.monotonic()))
            if event is None or msg["event"] == event:
                return dict(msg)

    async def join(self, topic: str, payload: Any) -> dict[str, Any]:
        ref = await self.send(topic, "phx_join", payload)
        while True:
            reply = await self.next("phx_reply")
            if reply["ref"] == ref:
                return reply["payload"]
