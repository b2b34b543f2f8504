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
