"""`carbook db …` for ops: the target named first, drift as exit 8, a rollback re-applied
with its bookings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from carbook_cli import app
from carbook_sdk import Database, supabase_dir
from tests.helpers import Db, book, create_car, create_user

runner = CliRunner()
NO_DB_URL: dict[str, str | None] = {"CARBOOK_DB_URL": None, "SUPABASE_DB_URL": None, "CARBOOK_URL": None}
HOSTED = {**NO_DB_URL, "SUPABASE_URL": "https://abcdefgh.supabase.co", "SUPABASE_ANON_KEY": "anon"}


def run(*args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Any:
    return runner.invoke(app, list(args), input=input, env=env)


def _port(db: Db) -> str:
    return db.url.rsplit(":", 1)[1].split("/")[0]


# The target ---------------------------------------------------------------------------
def test_the_target_comes_first_and_never_with_its_password() -> None:
    result = run("db", "status", "--db-url", "postgresql://ops:s3cret-pw@127.0.0.1:1/fleet")
    assert result.exit_code == 4  # nothing listens there: the target was named before trying
    assert result.stdout.splitlines()[0] == "Target: ops@127.0.0.1:1/fleet (from --db-url)"
    assert "s3cret-pw" not in result.output


def test_json_carries_the_target_it_took_from_the_environment(db: Db) -> None:
    result = run("db", "status", "--json", env={**NO_DB_URL, "SUPABASE_DB_URL": db.url})
    assert result.exit_code == 0, result.output
    target = {"host": "127.0.0.1", "port": _port(db), "database": db.name, "user": "postgres"}
    assert json.loads(result.stdout)["target"] == {**target, "source": "SUPABASE_DB_URL"}
    assert f"Target: postgres@127.0.0.1:{_port(db)}/{db.name} (from SUPABASE_DB_URL)" in result.stderr
    verify = json.loads(run("db", "verify", "--json", "--db-url", db.url).stdout)
    assert verify["target"] == {**target, "source": "--db-url"}


def test_a_hosted_project_without_a_database_url_is_refused(tmp_path: Path) -> None:
    backup = tmp_path / "backup.json"
    backup.write_text("{}")
    for args in (
        ("db", "status"),
        ("db", "migrate"),
        ("db", "verify", "--lint"),
        ("db", "rollback", "--yes", "--force"),
        ("db", "restore", str(backup), "--yes"),
        ("db", "seed"),
    ):
        result = run(*args, env=HOSTED)
        assert result.exit_code == 10, (args, result.output)
        assert result.stdout == ""
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("Error: the project is abcdefgh.supabase.co, but no database URL was given")
        assert "SUPABASE_DB_URL" in line
    by_flag = run("--url", "https://abcdefgh.supabase.co", "db", "status", env=NO_DB_URL)
    assert by_flag.exit_code == 10 and "abcdefgh.supabase.co" in by_flag.stderr


def test_a_hosted_project_with_its_database_url_goes_there(db: Db) -> None:
    result = run("db", "status", env={**HOSTED, "SUPABASE_DB_URL": db.url})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"Target: postgres@127.0.0.1:{_port(db)}/{db.name} (from SUPABASE_DB_URL)"
    )


def test_the_local_stack_is_the_default_only_for_a_local_project(monkeypatch: Any) -> None:
    for var in ("CARBOOK_DB_URL", "SUPABASE_DB_URL", "CARBOOK_URL", "SUPABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    assert Database().target.source == "local stack"  # no connection is made to know it
    assert Database(api_url="http://localhost:54321").target.source == "local stack"
    assert Database(api_url="http://127.0.0.1:54321").target.source == "local stack"


def test_the_refusal_as_a_real_subprocess() -> None:
    env = {k: v for k, v in os.environ.items() if k not in NO_DB_URL}
    proc = subprocess.run(
        [sys.executable, "-m", "carbook_cli", "db", "status"],
        env={**env, "SUPABASE_URL": "https://abcdefgh.supabase.co", "SUPABASE_ANON_KEY": "anon"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 10 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "abcdefgh.supabase.co" in proc.stderr


def test_rollback_and_restore_name_the_target_in_their_question(db: Db, tmp_path: Path) -> None:
    book(db, create_car(db), create_user(db))
    target = f"postgres@127.0.0.1:{_port(db)}/{db.name}"
    asked = run("db", "rollback", "--db-url", db.url, "--force", "--backup-dir", str(tmp_path), input="n\n")
    assert asked.exit_code == 1
    assert (
        f"Rolling back migration 20250916010000 on {target}, a database with 1 car(s), 1 booked"
        in asked.stdout
    )
    assert f"Roll back 20250916010000 on {target}. Proceed?" in asked.stdout
    done = run("db", "rollback", "--db-url", db.url, "--force", "--yes", "--backup-dir", str(tmp_path))
    assert done.exit_code == 0
    (backup,) = tmp_path.glob("*.json")
    unrestored = run("db", "migrate", "--db-url", db.url, "--no-restore")
    assert unrestored.exit_code == 0
    assert "1 existing car(s) are now available at the default price (`carbook db restore BACKUP`" in (
        unrestored.stdout.replace("\n", "")
    )
    no = run("db", "restore", str(backup), "--db-url", db.url, input="n\n")
    assert no.exit_code == 1
    assert f"Restore 1 booking(s) and the prices of 1 car(s) from {backup}" in no.stdout.replace("\n", "")
    assert f"into {target}. Proceed?" in no.stdout.replace("\n", "")
    assert db.scalar("select count(*) from public.cars where booking_status = 'booked'") == 0


# Drift ----------------------------------------------------------------------------------
def test_an_applied_version_without_a_file_is_exit_8(db: Db) -> None:
    with db.connect() as conn:
        conn.execute(
            "insert into supabase_migrations.schema_migrations (version, name) values ('20980101000000', 'gone')"
        )
    status = run("db", "status", "--db-url", db.url)
    assert status.exit_code == 8
    assert "applied, no local file" in status.stdout and "Up to date." not in status.stdout
    assert status.stderr.strip() == (
        "Error: the migration history does not match the migration files: 20980101000000 is applied but has no "
        "migration file (`carbook db status` shows what changed; restore the files as they were applied, "
        "record what is true with `carbook db repair --status applied|reverted VERSION`, "
        "or run `carbook db migrate --ignore-drift`)"
    )
    data = json.loads(run("db", "status", "--db-url", db.url, "--json").stdout)
    assert data["drift"] == {"unknown": ["20980101000000"], "changed": [], "diffs": {}}
    refused = run("db", "migrate", "--db-url", db.url)
    assert refused.exit_code == 8 and "20980101000000 is applied but has no migration file" in refused.stderr
    assert run("db", "migrate", "--db-url", db.url, "--ignore-drift").exit_code == 0


def test_a_changed_file_is_exit_8(db: Db, tmp_path: Path) -> None:
    shutil.copytree(supabase_dir(), tmp_path / "supabase")
    edited = tmp_path / "supabase" / "migrations" / "20250918000000_tighten_api_grants.sql"
    edited.write_text(edited.read_text() + "\nrevoke all on public.audit_logs from anon;\n")
    project = ("--workdir", str(tmp_path))
    status = run(*project, "db", "status", "--db-url", db.url)
    assert status.exit_code == 8
    assert "applied, file changed" in status.stdout
    assert "20250918000000_tighten_api_grants.sql changed since it was applied" in status.stderr
    refused = run(*project, "db", "migrate", "--db-url", db.url)
    assert refused.exit_code == 8 and "changed since it was applied" in refused.stderr
    assert run(*project, "db", "migrate", "--db-url", db.url, "--ignore-drift").exit_code == 0


# A rollback re-applied ------------------------------------------------------------------
def test_migrate_says_what_it_restored_and_what_it_could_not(db: Db, tmp_path: Path) -> None:
    kept, gone = create_car(db, price=90000, currency="USD"), create_car(db)
    user = create_user(db)
    book(db, kept, user)
    book(db, gone, create_user(db))
    backups = ("--backup-dir", str(tmp_path))
    rolled = run("db", "rollback", "--db-url", db.url, "--yes", "--force", *backups)
    assert rolled.exit_code == 0
    assert "(the database keeps a copy too)" in rolled.stdout.replace("\n", "")
    assert "`carbook db migrate` re-applies it" in rolled.stdout.replace("\n", "")
    with db.connect() as conn:
        conn.execute("delete from public.cars where id = %s", (gone,))
    migrated = run("db", "migrate", "--db-url", db.url)  # no --backup-dir: the database has it
    assert migrated.exit_code == 0, migrated.output
    (backup,) = tmp_path.glob("*.json")
    out = migrated.stdout.replace("\n", "")
    assert f"Restored 1 booking(s) and 1 price(s) for the 1 car(s) in the database's copy of {backup}." in out
    assert f"not restored car {gone}: the car no longer exists" in out
    assert db.scalar("select booked_by from public.cars where id = %s", (kept,)) == user
    again = json.loads(run("db", "migrate", "--db-url", db.url, "--json", *backups).stdout)
    assert again["restored"] is None and again["applied"] == []


def test_backups_live_at_the_project_root_whatever_the_folder(
    db: Db, tmp_path: Path, monkeypatch: Any
) -> None:
    """A rollback run at the project root and a migrate run from a subfolder meet in the
    one backup folder: the booking comes back without any --backup-dir."""
    project = tmp_path / "project"
    project.mkdir()
    assert run("init", "--workdir", str(project)).exit_code == 0
    (project / "app" / "deep").mkdir(parents=True)
    car, user = create_car(db), create_user(db)
    book(db, car, user)
    monkeypatch.chdir(project)
    rolled = run("db", "rollback", "--db-url", db.url, "--yes", "--force")
    assert rolled.exit_code == 0, rolled.output
    assert "carbook db migrate` re-applies it" in rolled.stdout.replace("\n", "")
    (backup,) = (project / ".carbook" / "backups").glob("*.json")
    monkeypatch.chdir(project / "app" / "deep")
    migrated = run("db", "migrate", "--db-url", db.url)
    assert migrated.exit_code == 0, migrated.output
    assert f"in the database's copy of {backup}." in migrated.stdout.replace("\n", "")
    assert db.scalar("select booked_by from public.cars where id = %s", (car,)) == user
    assert not (project / "app" / "deep" / ".carbook").exists()


def test_a_database_url_that_is_not_one_is_a_bad_value_or_bad_settings() -> None:
    """Typed as a flag it is invalid input (3); from the environment, bad settings (10).
    Either way one line naming where it came from, never the string (it may hold a password)."""
    typed = run("db", "status", "--db-url", "not a url", env=NO_DB_URL)
    assert typed.exit_code == 3
    assert typed.stderr.strip().splitlines() == [
        "Error: the database URL from --db-url is not a PostgreSQL URL "
        "(expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
    ]
    configured = run("db", "status", env={**NO_DB_URL, "SUPABASE_DB_URL": "not a url s3cret"})
    assert configured.exit_code == 10
    assert "from SUPABASE_DB_URL is not a PostgreSQL URL" in configured.stderr
    assert "s3cret" not in configured.output


def _bookings(db: Db) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(
            "select id, booking_status, booked_by, price_in_paise, currency from public.cars order by id"
        ).fetchall()


def test_migrate_refuses_to_free_cars_when_no_backup_is_left(db: Db, tmp_path: Path) -> None:
    car = create_car(db, price=123400)
    book(db, car, create_user(db))
    assert (
        run("db", "rollback", "--db-url", db.url, "--yes", "--force", "--backup-dir", str(tmp_path)).exit_code
        == 0
    )
    with db.connect() as conn:
        conn.execute("drop schema carbook_ops cascade")  # as an older carbook's rollback left it
    for backup in tmp_path.glob("*.json"):
        backup.unlink()  # and the file is lost
    before = db.scalar("select count(*) from supabase_migrations.schema_migrations")
    refused = run("db", "migrate", "--db-url", db.url)
    assert refused.exit_code == 8, refused.output
    (line,) = refused.stderr.strip().splitlines()[:1]
    assert line.startswith("Error: 20250916010000_atomic_booking_implementation.sql was rolled back before")
    assert "nothing was applied" in line
    assert "--no-restore" in refused.stderr
    assert db.scalar("select count(*) from supabase_migrations.schema_migrations") == before
    assert db.scalar("select to_regprocedure('public.book_car_atomic(uuid)')") is None
    freed = run("db", "migrate", "--db-url", db.url, "--no-restore")
    assert freed.exit_code == 0, freed.output
    assert "1 existing car(s) are now available at the default price" in freed.stdout


def test_restore_refuses_a_backup_of_another_database_and_changes_nothing(db: Db, tmp_path: Path) -> None:
    car = create_car(db)
    book(db, car, create_user(db))
    assert (
        run("db", "rollback", "--db-url", db.url, "--yes", "--force", "--backup-dir", str(tmp_path)).exit_code
        == 0
    )
    assert run("db", "migrate", "--db-url", db.url, "--no-restore").exit_code == 0
    (backup,) = tmp_path.glob("*.json")
    doc = json.loads(backup.read_text())
    doc["database"]["oid"] = "1"
    doc["database"]["name"] = "someone_else"
    backup.write_text(json.dumps(doc))
    before = _bookings(db)
    refused = run("db", "restore", str(backup), "--db-url", db.url, "--yes")
    assert refused.exit_code == 3, refused.output
    line = refused.stderr.strip().splitlines()[0]
    assert line.startswith(f"Error: {backup} is a backup of another database (database someone_else, oid 1")
    assert "; nothing was restored (restore it into the database it came from)" in line
    assert _bookings(db) == before
    assert not (tmp_path / (backup.name + ".restored")).exists()
