"""What tests and benchmarks need of a stack of their own: one on free ports in a folder
of its own (`temporary_stack`), a connection to its database as its owner (`stack_db`),
users and cars made straight in the database (`make_users`, `make_cars`) where making
them is not what is tested or measured.

Part of the package (the ``stack`` extra) so that a project's own tests, carbook's
tests and its benchmarks use the same code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from .manager import LocalStack

__all__ = ["PASSWORD", "make_cars", "make_users", "stack_db", "temporary_stack"]

PASSWORD = "bench-password-1"


@contextmanager
def temporary_stack(prefix: str, *, start: bool = True, **settings: Any) -> Iterator[LocalStack]:
    """A stack on free ports in a folder of its own (``settings`` set on it before it
    starts), stopped and its folder deleted at the end, whatever happened to it."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    # The server may run as another user (when we are root): let it reach its folder.
    os.chmod(base, 0o755)
    stack = LocalStack.ephemeral(base / "state")
    for name, value in settings.items():
        setattr(stack.settings, name, value)
    try:
        if start:
            stack.start()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)


def stack_db(stack: LocalStack) -> psycopg.Connection[Any]:
    """An autocommit connection to the stack's database, as its owner (RLS does not apply)."""
    return psycopg.connect(stack.settings.db_url, autocommit=True)


def make_users(stack: LocalStack, n: int, tag: str, password: str = PASSWORD) -> list[tuple[str, str]]:
    """n (id, email) users straight into auth.users with a cheap bcrypt hash: signing in is
    not what is tested or measured."""
    users = [(str(uuid.uuid4()), f"{tag}-{i:04d}@bench.carbook.invalid") for i in range(n)]
    with stack_db(stack) as conn:
        row = conn.execute(
            "select extensions.crypt(%s, extensions.gen_salt('bf', 4))", (password,)
        ).fetchone()
        assert row is not None
        with conn.cursor() as cur:
            cur.executemany(
                """insert into auth.users (id, email, encrypted_password, email_confirmed_at)
                   values (%s, %s, %s, now())""",
                [(uid, email, row[0]) for uid, email in users],
            )
    return users


def make_cars(stack: LocalStack, n: int, tag: str) -> list[str]:
    """n published, available cars (ids), with an import key ``<tag>-<i>``."""
    with stack_db(stack) as conn:
        rows = conn.execute(
            """insert into public.cars (make, model, year, image_path, is_published, price_in_paise, ref)
               select 'Bench', %s || '-' || g, 2024, 'bench/car.png', true, 100000, %s || '-' || g
                 from generate_series(1, %s) g
               returning id::text""",
            (tag, tag, n),
        ).fetchall()
    return [r[0] for r in rows]
