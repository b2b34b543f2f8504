"""The main job on a private PostgreSQL: migrate, seed, verify, then a booking race.

Run through `bash scripts/demo.sh`. Starts its own cluster in .carbook/demo on a free
port, and stops it at the end: nothing is left running.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from carbook_sdk import Database, LocalPostgres
from carbook_sdk.local_postgres import free_port

CLIENTS = int(os.environ.get("CARBOOK_DEMO_CLIENTS", "20"))
console = Console()


def race(url: str, car_id: str, users: list[uuid.UUID]) -> list[tuple[uuid.UUID, dict[str, object]]]:
    conns = []
    for user in users:
        conn = psycopg.connect(url, autocommit=True)
        conn.execute("set role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, false)",
            (json.dumps({"role": "authenticated", "sub": str(user)}),),
        )
        conns.append(conn)
    barrier = threading.Barrier(len(users))
    results: list[tuple[uuid.UUID, dict[str, object]]] = []
    lock = threading.Lock()

    def attempt(user: uuid.UUID, conn: psycopg.Connection[object]) -> None:
        barrier.wait()
        row = conn.execute("select public.book_car_atomic(%s)", (car_id,)).fetchone()
        with lock:
            results.append((user, row[0]))  # type: ignore[index]

    threads = [threading.Thread(target=attempt, args=pair) for pair in zip(users, conns, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    return results


def main() -> int:
    root = Path(".carbook/demo").absolute()
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root.parent, 0o755)
    os.chmod(root, 0o755)
    server = LocalPostgres(root / "pg", port=free_port(), fast=True)
    console.print(f"Starting a private PostgreSQL on port {server.port} …")
    server.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("drop database if exists carbook_demo")
            conn.execute("create database carbook_demo")
        db = Database(server.url("carbook_demo"))
        result = db.migrate()
        for m in result.applied:
            console.print(f"[green]Applied[/] {m.version} {m.name}")
        db.seed()
        report = db.verify()
        console.print(f"Verify: {len(report.checks) - len(report.failed)}/{len(report.checks)} checks passed")
        if not report.ok:
            for c in report.failed:
                console.print(f"[red]FAILED[/] {c.name}: {c.detail}")
            return 1
        with psycopg.connect(db.url, autocommit=True) as conn:
            users = [uuid.uuid4() for _ in range(CLIENTS)]
            for u in users:
                conn.execute(
                    "insert into auth.users (id, email) values (%s, %s)", (u, f"{u.hex[:8]}@demo.test")
                )
            row = conn.execute(
                "select id::text, make || ' ' || model from public.cars"
                " where is_published and booking_status = 'available' order by created_at limit 1"
            ).fetchone()
        assert row is not None
        car_id, car_name = row
        results = race(db.url, car_id, users)
        table = Table(title=f"{CLIENTS} users race for {car_name} ({car_id})")
        table.add_column("user")
        table.add_column("outcome")
        table.add_column("message")
        for user, r in sorted(results, key=lambda x: x[1]["code"] != "booked"):
            style = "green" if r["success"] else "red"
            table.add_row(str(user)[:8], f"[{style}]{r['code']}[/]", str(r["message"]))
        console.print(table)
        winners = [r for _, r in results if r["code"] == "booked"]
        console.print(f"Winners: {len(winners)}  Losers: {len(results) - len(winners)}")
        return 0 if len(winners) == 1 else 1
    finally:
        server.stop()
        console.print("Stopped the private PostgreSQL.")


if __name__ == "__main__":
    sys.exit(main())
