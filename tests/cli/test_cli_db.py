"""`carbook db …` through Typer's CliRunner and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from carbook_cli import app
from tests.helpers import MIGRATIONS, Db, book, create_car, create_user

runner = CliRunner()


def run(*args: str, input: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=input)


def _state(db: Db) -> tuple[Any, ...]:
    with db.connect() as conn:
        return (
            conn.execute("select * from public.cars order by id").fetchall(),
            conn.execute("select version from supabase_migrations.schema_migrations order by 1").fetchall(),
        )


def test_migrate_then_up_to_date(empty_db: Db) -> None:
    first = run("db", "migrate", "--db-url", empty_db.url)
    assert first.exit_code == 0, first.output
    assert "Applied 20250916000000 base_schema" in first.stdout
    assert "Applied 20250916010000 atomic_booking_implementation" in first.stdout
    second = run("db", "migrate", "--db-url", empty_db.url)
    assert second.exit_code == 0
    assert "Database is up to date: no pending migrations." in second.stdout


def test_migrate_json(empty_db: Db) -> None:
    result = run("db", "migrate", "--db-url", empty_db.url, "--json")
    assert result.exit_code == 0
    port = empty_db.url.rsplit(":", 1)[1].split("/")[0]
    assert json.loads(result.stdout) == {
        "target": {
            "host": "127.0.0.1",
            "port": port,
            "database": empty_db.name,
            "user": "postgres",
            "source": "--db-url",
        },
        "restored": None,
        "cars_without_backup": 0,
        "platform": "applied",
        "applied": [{"version": v, "name": n} for v, n in MIGRATIONS],
    }


def test_status_table_and_json(db: Db) -> None:
    table = run("db", "status", "--db-url", db.url)
    assert table.exit_code == 0
    assert "20250916010000" in table.stdout and "applied" in table.stdout and "Up to date." in table.stdout
    data = json.loads(run("db", "status", "--db-url", db.url, "--json").stdout)
    assert data["up_to_date"] is True
    assert [m["state"] for m in data["migrations"]] == ["applied"] * len(MIGRATIONS)


def test_status_reads_the_url_from_the_environment(db: Db) -> None:
    result = runner.invoke(app, ["db", "status", "--json"], env={"SUPABASE_DB_URL": db.url})
    assert result.exit_code == 0
    assert json.loads(result.stdout)["up_to_date"] is True


def test_verify_green_then_red(db: Db) -> None:
    ok = run("db", "verify", "--db-url", db.url)
    assert ok.exit_code == 0
    assert "checks passed" in ok.stdout
    with db.connect() as conn:
        conn.execute("drop policy cars_select_anon on public.cars")
    bad = run("db", "verify", "--db-url", db.url, "--failed")
    assert bad.exit_code == 1
    assert "policy:public.cars.cars_select_anon" in bad.stdout
    assert "1 of" in bad.stdout and "checks failed" in bad.stdout
    data = json.loads(run("db", "verify", "--db-url", db.url, "--json").stdout)
    assert data["ok"] is False
    assert [c["name"] for c in data["checks"] if not c["ok"]] == ["policy:public.cars.cars_select_anon"]


def test_verify_lint_green_then_red(db: Db) -> None:
    ok = run("db", "verify", "--db-url", db.url, "--lint")
    assert ok.exit_code == 0, ok.output
    assert "authenticated_security_definer_function_executable" in ok.stdout and "intended" in ok.stdout
    assert "Lints: no problems (exposed schemas: public)" in ok.stdout
    with db.connect() as conn:
        conn.execute("create table public.notes (body text)")  # no RLS, no primary key
    bad = run("db", "verify", "--db-url", db.url, "--lint", "--json")
    assert bad.exit_code == 1
    data = json.loads(bad.stdout)
    assert data["lint"]["ok"] is False and data["lint"]["exposed_schemas"] == ["public"]
    found = {(f["lint"], f["object"]) for f in data["lint"]["findings"] if not f.get("intended")}
    assert {("rls_disabled_in_public", "public.notes"), ("no_primary_key", "public.notes")} <= found
    assert all(c["ok"] for c in data["checks"] if c["name"] != "rls:every public table")


def test_rollback_refuses_on_booked_cars_and_changes_nothing(db: Db, tmp_path: Path) -> None:
    book(db, create_car(db), create_user(db))
    before = _state(db)
    result = run("db", "rollback", "--db-url", db.url, "--yes", "--backup-dir", str(tmp_path))
    assert result.exit_code == 9
    assert "1 booked" in result.stdout  # the plan was shown first
    assert "Error: 1 car(s) are booked" in result.stderr
    assert "Traceback" not in result.output
    assert _state(db) == before
    assert list(tmp_path.iterdir()) == []
    # Without --yes it refuses before asking: no question whose answer could not matter.
    unasked = run("db", "rollback", "--db-url", db.url, "--backup-dir", str(tmp_path), input="")
    assert unasked.exit_code == 9 and "Proceed?" not in unasked.output
    assert _state(db) == before


def test_rollback_asks_and_a_no_changes_nothing(db: Db, tmp_path: Path) -> None:
    create_car(db)
    before = _state(db)
    result = run("db", "rollback", "--db-url", db.url, "--backup-dir", str(tmp_path), input="n\n")
    assert result.exit_code == 1
    assert "drop function public.book_car_atomic(uuid)" in result.stdout
    assert "Proceed?" in result.stdout
    assert _state(db) == before


def test_forced_rollback_prints_the_backup_then_restore(db: Db, tmp_path: Path) -> None:
    car = create_car(db)
    user = create_user(db)
    book(db, car, user)
    result = run("db", "rollback", "--db-url", db.url, "--yes", "--force", "--backup-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    backups = list(tmp_path.iterdir())
    assert len(backups) == 1
    assert str(backups[0]) in result.stdout.replace("\n", "")
    # Freeing the booked car takes saying so; the file puts it back later.
    assert run("db", "migrate", "--db-url", db.url, "--no-restore").exit_code == 0
    assert db.scalar("select booked_by from public.cars where id = %s", (car,)) is None
    restored = run("db", "restore", str(backups[0]), "--db-url", db.url, "--yes")
    assert restored.exit_code == 0
    assert "Restored 1 booking(s) and 1 price(s) for the 1 car(s)" in restored.stdout
    assert db.scalar("select booked_by from public.cars where id = %s", (car,)) == user


def test_restore_of_a_missing_file_is_a_clear_error(db: Db, tmp_path: Path) -> None:
    before = _state(db)
    result = run("db", "restore", str(tmp_path / "nope.json"), "--db-url", db.url)
    assert result.exit_code == 3
    assert "Error: cannot read backup" in result.stderr and "no such file or directory" in result.stderr
    # A folder, and a file that is no JSON: said in words, not Python's ([Errno 21], "Expecting value").
    folder = run("db", "restore", str(tmp_path), "--db-url", db.url)
    assert folder.exit_code == 3 and "it is a folder" in folder.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x89PNG not json")
    junk = run("db", "restore", str(garbage), "--db-url", db.url)
    assert junk.exit_code == 3 and "is not a carbook rollback backup (it is not JSON)" in junk.stderr
    for said in (result, folder, junk):
        assert "Errno" not in said.stderr and "Expecting value" not in said.stderr, said.stderr
    assert _state(db) == before


def test_unreachable_database_is_one_line_and_exit_4() -> None:
    result = run("db", "status", "--db-url", "postgresql://postgres:secret@127.0.0.1:1/nowhere")
    assert result.exit_code == 4
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(
        "Error: Could not connect to PostgreSQL at postgresql://postgres:***@127.0.0.1:1/nowhere"
    )
    assert "secret" not in result.output
    assert "Traceback" not in result.output


def test_verbose_shows_the_traceback() -> None:
    result = run("--verbose", "db", "status", "--db-url", "postgresql://postgres:x@127.0.0.1:1/nowhere")
    assert result.exit_code == 4
    assert "Traceback" in result.stderr


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == "carbook 0.1.0"


def test_db_group_as_a_real_subprocess(db: Db) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "carbook_cli", "db", "status", "--json", "--db-url", db.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["up_to_date"] is True
    bad = subprocess.run(
        [sys.executable, "-m", "carbook_cli", "db", "verify", "--db-url", "postgresql://u:p@127.0.0.1:1/x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 4
    assert bad.stderr.startswith("Error: Could not connect to PostgreSQL")
