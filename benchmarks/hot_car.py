"""Hot car: many latecomers for one car that is already booked (issue: losers answered at
read speed). pgbench calls the function with the role and claims PostgREST sets, so the
client costs nothing measurable and the database's own behaviour is what is timed.

Three bodies in the same run, on the same booked car:
- ``read_first``: today's ``public.book_car_atomic`` (migration 20250920000000's read-first
  body, with 20250921000000's refusal of anonymous users in front);
- ``lock_first``: the body of 20250916010000, kept here as a benchmark-only copy in the
  ``bench`` schema (it takes ``FOR UPDATE`` before it looks);
- ``floor``: ``public.book_car_atomic`` on a car that does not exist (``not_found``): no
  row to lock or read, the no-lock floor.

And other cars stay bookable: pgbench books distinct cars at concurrency 8, alone and
while 100 more pgbench clients hammer the booked car.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from carbook_sdk.config import supabase_dir
from carbook_stack.local_postgres import find_pg_bindir
from carbook_stack.manager import LocalStack
from carbook_stack.testing import make_cars, make_users, stack_db

__all__ = ["bench_hot_car"]


def _lock_first_copy() -> str:
    """The 20250916010000 body as ``bench.book_car_atomic_lock_first(uuid)``."""
    sql = (supabase_dir() / "migrations" / "20250916010000_atomic_booking_implementation.sql").read_text()
    start = sql.index("create or replace function public.book_car_atomic")
    body = sql[start : sql.index("$$;", start) + 3]
    return body.replace("public.book_car_atomic(", "bench.book_car_atomic_lock_first(").replace(
        "book_car_atomic.car_id", "book_car_atomic_lock_first.car_id"
    )


def _pgbench(stack: LocalStack, script: str, clients: int, seconds: int) -> float:
    folder = Path(tempfile.mkdtemp(prefix="carbook-pgbench-"))
    try:
        path = folder / "bench.sql"
        path.write_text(script)
        s = stack.settings
        out = subprocess.run(
            [
                str(find_pg_bindir() / "pgbench"),
                "-n",
                "-M",
                "prepared",
                "-f",
                str(path),
                "-c",
                str(clients),
                "-j",
                str(min(clients, 2)),
                "-T",
                str(seconds),
                "-h",
                s.host,
                "-p",
                str(s.db_port),
                "-U",
                "postgres",
                "postgres",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": "postgres"},
            timeout=seconds + 120,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"pgbench failed: {out.stderr or out.stdout}")
    return round(float(m.group(1)), 1)


def _call(function: str, car: str, claims: dict[str, Any]) -> str:
    return (
        "BEGIN;\n"
        f"SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{json.dumps(claims)}', true);\n"
        f"SELECT {function}('{car}');\n"
        "COMMIT;\n"
    )


def bench_hot_car(stack: LocalStack, seconds: int, distinct_cars: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    (owner, _), (loser, _) = make_users(stack, 2, f"hot-{tag}")
    (car,) = make_cars(stack, 1, f"hot-{tag}")
    with stack_db(stack) as conn:
        conn.execute("create schema if not exists bench")
        conn.execute(_lock_first_copy())
        conn.execute("grant usage on schema bench to authenticated")
        conn.execute("grant execute on function bench.book_car_atomic_lock_first(uuid) to authenticated")
        conn.execute(
            "update public.cars set booking_status = 'booked', booked_by = %s, booked_at = now() where id = %s",
            (owner, car),
        )
    claims = {"sub": loser, "role": "authenticated"}
    missing = str(uuid.uuid4())
    levels = []
    for clients in (8, 32):
        row = {
            "concurrency": clients,
            "read_first": _pgbench(stack, _call("public.book_car_atomic", car, claims), clients, seconds),
            "lock_first": _pgbench(
                stack, _call("bench.book_car_atomic_lock_first", car, claims), clients, seconds
            ),
            "floor": _pgbench(stack, _call("public.book_car_atomic", missing, claims), clients, seconds),
        }
        row["read_first_vs_floor"] = round(row["read_first"] / row["floor"], 3)
        row["lock_first_vs_floor"] = round(row["lock_first"] / row["floor"], 3)
        levels.append(row)

    # Other cars: each pgbench client books distinct cars, one per transaction, as new users.
    def other_cars_script() -> str:
        cars = make_cars(stack, distinct_cars, f"hot-free-{uuid.uuid4().hex[:6]}")
        users = make_users(stack, len(cars), f"hot-u-{uuid.uuid4().hex[:6]}")
        with stack_db(stack) as conn:
            conn.execute("drop table if exists bench.free; drop sequence if exists bench.free_seq")
            conn.execute("create table bench.free (n int primary key, car_id uuid, claims text)")
            conn.execute("create sequence bench.free_seq")
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into bench.free values (%s, %s, %s)",
                    [
                        (i + 1, c, json.dumps({"sub": u, "role": "authenticated"}))
                        for i, (c, (u, _)) in enumerate(zip(cars, users, strict=True))
                    ],
                )
        return (
            # Past the last car the cars come round again (as cheap "already booked" reads):
            # sized so that a full run does not get there.
            f"SELECT car_id, claims FROM bench.free WHERE n = (SELECT (nextval('bench.free_seq') - 1) % {len(cars)} + 1) \\gset\n"
            "BEGIN;\n"
            "SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', :claims, true);\n"
            "SELECT public.book_car_atomic(:car_id);\n"
            "COMMIT;\n"
        )

    alone = _pgbench(stack, other_cars_script(), 8, seconds)

    hammer_failures: list[str] = []

    def hammer_load(script: str) -> None:
        # Only its load counts, not its own rate; a hammer that got nothing done (on a
        # loaded machine, 100 connections can take its whole second) is reported, not raised
        # in a thread where nobody would see it.
        try:
            _pgbench(stack, script, 100, seconds + 2)
        except RuntimeError as exc:
            hammer_failures.append(str(exc).splitlines()[0])

    def hammered(function: str) -> float:
        """Other cars booked while 100 clients call ``function`` on the booked car."""
        script = other_cars_script()
        hammer = threading.Thread(target=hammer_load, args=(_call(function, car, claims),), daemon=True)
        hammer.start()
        try:
            return _pgbench(stack, script, 8, seconds)
        finally:
            hammer.join()

    read_first = hammered("public.book_car_atomic")
    lock_first = hammered("bench.book_car_atomic_lock_first")
    return {
        "seconds": seconds,
        "levels": levels,
        "other_cars_alone": alone,
        "other_cars_hammered": read_first,
        "other_cars_hammered_lock_first": lock_first,
        "other_cars_ratio": round(read_first / alone, 3),
        "other_cars_ratio_lock_first": round(lock_first / alone, 3),
        "hammer_failures": hammer_failures,
    }
