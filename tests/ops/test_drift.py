"""Drift: an applied migration without its file, or a file changed since it was applied."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from carbook_sdk import Database, supabase_dir
from carbook_sdk.errors import MigrationDriftError
from tests.helpers import Db

ATOMIC_FILE = "20250916010000_atomic_booking_implementation.sql"
NEW_FILE = "20990101000000_add_colour.sql"


def _project(tmp_path: Path) -> Path:
    """A copy of carbook's supabase/ folder with one pending migration."""
    copy = tmp_path / "supabase"
    shutil.copytree(supabase_dir(), copy)
    (copy / "migrations" / NEW_FILE).write_text("alter table public.cars add column colour text;\n")
    return copy


def _has_colour(db: Db) -> bool:
    return bool(
        db.scalar(
            "select count(*) from information_schema.columns where table_name = 'cars' and column_name = 'colour'"
        )
    )


def test_no_drift_on_a_migrated_database(db: Db) -> None:
    status = db.database.status()
    assert not status.drift and status.unknown == () and status.changed == ()
    assert status.drift_error() is None


def test_an_applied_version_without_a_file_stops_migrate(db: Db, tmp_path: Path) -> None:
    with db.connect() as conn:
        conn.execute(
            "insert into supabase_migrations.schema_migrations (version, name) values ('20980101000000', 'gone')"
        )
    database = Database(db.url, project_dir=_project(tmp_path))
    status = database.status()
    assert status.unknown == ("20980101000000",) and status.drift
    with pytest.raises(MigrationDriftError) as info:
        database.migrate()
    assert info.value.unknown == ("20980101000000",)
    assert "20980101000000 is applied but has no migration file" in str(info.value)
    assert "--ignore-drift" in str(info.value)
    assert not _has_colour(db)  # refused before anything ran

    result = database.migrate(ignore_drift=True)
    assert [m.filename for m in result.applied] == [NEW_FILE]
    assert _has_colour(db)


def test_a_file_changed_since_it_was_applied_stops_migrate(db: Db, tmp_path: Path) -> None:
    project = _project(tmp_path)
    edited = project / "migrations" / ATOMIC_FILE
    edited.write_text(edited.read_text() + "\ncreate index cars_year_idx on public.cars (year);\n")
    database = Database(db.url, project_dir=project)
    status = database.status()
    assert [m.filename for m in status.changed] == [ATOMIC_FILE] and status.unknown == ()
    with pytest.raises(MigrationDriftError, match=f"{ATOMIC_FILE} changed since it was applied") as info:
        database.migrate()
    assert info.value.changed == (ATOMIC_FILE,)
    assert not _has_colour(db)
    database.migrate(ignore_drift=True)
    assert _has_colour(db)


def test_history_written_by_the_supabase_cli_is_not_drift(db: Db) -> None:
    """The Supabase CLI stores a file split into statements; `migration repair` stores none."""
    text = (supabase_dir() / "migrations" / ATOMIC_FILE).read_text()
    statements = [s.strip() for s in re.split(r";\s*\n", text) if s.strip()]
    with db.connect() as conn:
        conn.execute(
            "update supabase_migrations.schema_migrations set statements = %s where version = '20250916010000'",
            (statements,),
        )
        conn.execute(
            "update supabase_migrations.schema_migrations set statements = null where version = '20250917000000'"
        )
    assert not db.database.status().drift


def _rows(db: Db) -> list[tuple[object, ...]]:
    with db.connect() as conn:
        return conn.execute(
            "select version, name, statements from supabase_migrations.schema_migrations order by version"
        ).fetchall()


def test_status_shows_what_changed_and_repair_records_it(db: Db, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from carbook_cli import app

    project = _project(tmp_path)
    (project / "migrations" / NEW_FILE).unlink()
    edited = project / "migrations" / ATOMIC_FILE
    edited.write_text(edited.read_text() + "\ncreate index cars_year_idx on public.cars (year);\n")
    database = Database(db.url, project_dir=project)
    diff = database.status().diffs[ATOMIC_FILE]
    assert diff.startswith(f"--- {ATOMIC_FILE} (as applied)\n+++ {ATOMIC_FILE} (now)\n")
    assert "\n+create index cars_year_idx on public.cars (year);\n" in diff
    assert "\n-" not in diff  # only added lines

    runner = CliRunner()

    def cli(*args: str) -> object:
        return runner.invoke(
            app, ["db", *args, "--db-url", db.url], env={"CARBOOK_WORKDIR": str(project.parent)}
        )

    shown = cli("status")
    assert shown.exit_code == 8  # type: ignore[attr-defined]
    out = shown.stdout  # type: ignore[attr-defined]
    assert f"{ATOMIC_FILE} changed since it was applied:" in out
    assert "+create index cars_year_idx on public.cars (year);" in out

    repaired = cli("repair", "20250916010000", "--status", "applied")
    assert repaired.exit_code == 0, repaired.output  # type: ignore[attr-defined]
    assert f"{ATOMIC_FILE} recorded again as applied: nothing was run" in repaired.stdout  # type: ignore[attr-defined]
    assert not database.status().drift
    assert database.migrate().applied == ()  # no --ignore-drift needed any more
    assert db.scalar("select to_regclass('public.cars_year_idx')") is None  # nothing ran


def test_repair_reverted_makes_a_migration_pending_again(db: Db, tmp_path: Path) -> None:
    project = _project(tmp_path)
    database = Database(db.url, project_dir=project)
    database.migrate()
    assert _has_colour(db)
    assert "marked reverted" in database.repair("20990101000000", "reverted")
    assert [m.filename for m in database.status().pending] == [NEW_FILE]
    with db.connect() as conn:
        conn.execute("alter table public.cars drop column colour")  # undone by hand, as repair is for
    assert [m.filename for m in database.migrate().applied] == [NEW_FILE]
    assert _has_colour(db)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("repair", "2025", "--status", "applied"), "'2025' is not a migration version (14 digits"),
        (("repair", "20990101000000", "--status", "applied"), "no migration file 20990101000000_*.sql in"),
        (
            ("repair", "20990101000000", "--status", "reverted"),
            "20990101000000 is not in the migration history",
        ),
        (
            ("repair", "20250916010000", "--status", "done"),
            "--status must be applied or reverted, not 'done'",
        ),
    ],
)
def test_repair_refuses_bad_input_and_changes_nothing(db: Db, args: tuple[str, ...], message: str) -> None:
    from typer.testing import CliRunner

    from carbook_cli import app

    before = _rows(db)
    result = CliRunner().invoke(app, ["db", *args, "--db-url", db.url])
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith(f"Error: {message}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert _rows(db) == before
