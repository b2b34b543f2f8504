"""The migration runner on real databases: order, idempotence, history, atomicity."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from carbook_sdk import ConfigurationError, Database, MigrationError, PlatformState, supabase_dir
from tests.helpers import MIGRATIONS, Db, versions

VERSIONS = versions()


def _history(db: Db) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(
            "select version, name from supabase_migrations.schema_migrations order by version"
        ).fetchall()


def _schema(db: Db) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(
            """select table_schema, table_name, column_name, data_type
                 from information_schema.columns
                where table_schema in ('public', 'private', 'storage', 'auth')
                order by 1, 2, 3"""
        ).fetchall()


def test_migrate_on_empty_database_applies_both_then_nothing(empty_db: Db) -> None:
    database = empty_db.database
    status = database.status()
    assert [m.version for m in status.pending] == VERSIONS
    assert status.applied == () and not status.platform_ready

    first = database.migrate()
    assert first.platform is PlatformState.APPLIED
    assert [m.version for m in first.applied] == VERSIONS
    assert _history(empty_db) == MIGRATIONS

    second = database.migrate()
    assert second.applied == ()
    assert second.platform is PlatformState.PRESENT

    status = database.status()
    assert status.up_to_date and [m.version for m in status.applied] == VERSIONS
    assert status.unknown == ()


def test_history_keeps_the_statements_like_the_supabase_cli(empty_db: Db) -> None:
    empty_db.database.migrate()
    stored = empty_db.scalar(
        "select statements[1] from supabase_migrations.schema_migrations where version = %s", (VERSIONS[1],)
    )
    path = supabase_dir() / "migrations" / "20250916010000_atomic_booking_implementation.sql"
    assert stored == path.read_text()


def test_status_reports_versions_applied_elsewhere(db: Db) -> None:
    with db.connect() as conn:
        conn.execute(
            "insert into supabase_migrations.schema_migrations (version, name) values ('20990101000000', 'x')"
        )
    assert db.database.status().unknown == ("20990101000000",)


def _project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "supabase"
    shutil.copytree(supabase_dir(), copy)
    return copy


def test_a_failing_migration_changes_neither_schema_nor_history(db: Db, tmp_path: Path) -> None:
    project = _project_copy(tmp_path)
    (project / "migrations" / "20990101000000_broken.sql").write_text(
        "create table public.half_done (id int primary key);\n"
        "alter table public.cars add column colour text;\n"
        "select * from public.no_such_table;\n"
    )
    schema, history = _schema(db), _history(db)
    with pytest.raises(MigrationError) as info:
        Database(db.url, project_dir=project).migrate()
    err = info.value
    assert err.migration == "20990101000000_broken.sql"
    assert "20990101000000_broken.sql failed at line 3" in str(err)
    assert 'relation "public.no_such_table" does not exist' in str(err)
    assert (_schema(db), _history(db)) == (schema, history)
    assert db.scalar("select to_regclass('public.half_done')") is None


def test_a_failing_migration_leaves_the_database_as_it_was_before_the_run(
    empty_db: Db, tmp_path: Path
) -> None:
    project = _project_copy(tmp_path)
    (project / "migrations" / "20250916005000_broken.sql").write_text("select 1/0;\n")
    with pytest.raises(MigrationError, match="division by zero; nothing of this run was applied"):
        Database(empty_db.url, project_dir=project).migrate()
    # One transaction for the whole run: not the bootstrap, not the base schema before it.
    assert empty_db.scalar("select to_regnamespace('supabase_migrations')") is None
    assert empty_db.scalar("select to_regclass('public.cars')") is None

    # Migrated up to the base schema, the same failure leaves exactly that.
    (project / "migrations" / "20250916005000_broken.sql").unlink()
    later = sorted((project / "migrations").glob("*.sql"))[1:]
    held = {m: m.read_text() for m in later}
    for m in later:
        m.unlink()
    Database(empty_db.url, project_dir=project).migrate()
    for m, text in held.items():
        m.write_text(text)
    (project / "migrations" / "20250916005000_broken.sql").write_text("select 1/0;\n")
    with pytest.raises(MigrationError, match=r"20250916005000_broken\.sql failed"):
        Database(empty_db.url, project_dir=project).migrate()
    assert _history(empty_db) == [("20250916000000", "base_schema")]
    assert empty_db.scalar("select to_regprocedure('public.book_car_atomic(uuid)')") is None


def test_badly_named_migration_file_is_refused_before_anything_runs(empty_db: Db, tmp_path: Path) -> None:
    project = _project_copy(tmp_path)
    (project / "migrations" / "add_colour.sql").write_text("alter table public.cars add column colour text;")
    with pytest.raises(ConfigurationError, match=r"'add_colour.sql' is not <14-digit timestamp>_<name>.sql"):
        Database(empty_db.url, project_dir=project).migrate()
    assert empty_db.scalar("select to_regnamespace('supabase_migrations')") is None


def test_bootstrap_leaves_a_real_supabase_database_alone(empty_db: Db) -> None:
    with empty_db.connect() as conn:
        conn.execute("create schema auth; create table auth.users (id uuid primary key)")
    assert empty_db.database.ensure_platform() is PlatformState.SUPABASE
    # Nothing of carbook's bootstrap was added, only the CLI's history table.
    assert empty_db.scalar("select to_regnamespace('storage')") is None
    assert empty_db.scalar("select to_regclass('supabase_migrations.schema_migrations')") is not None
    assert empty_db.scalar("select obj_description(to_regnamespace('supabase_migrations'))") is None


def test_bootstrap_is_idempotent(empty_db: Db) -> None:
    from carbook_sdk.ops.migration_files import bootstrap_sql as _bootstrap_sql

    database = empty_db.database
    assert database.ensure_platform() is PlatformState.APPLIED
    # Running the script itself again changes nothing and raises nothing.
    with empty_db.connect() as conn:
        conn.execute(_bootstrap_sql())  # type: ignore[arg-type]
    assert database.ensure_platform() is PlatformState.PRESENT


def test_an_older_bootstrap_is_brought_up_to_date(db: Db) -> None:
    """A database bootstrapped before auth.identities existed (marker 1) gets it, and
    keeps its users, on the next migrate or stack start."""
    with db.connect() as conn:
        conn.execute("drop table auth.identities")
        conn.execute("comment on schema supabase_migrations is 'carbook platform bootstrap 1'")
        conn.execute("insert into auth.users (email) values ('old@example.test')")
    database = db.database
    assert database.ensure_platform() is PlatformState.APPLIED
    assert db.scalar("select to_regclass('auth.identities')::text") == "auth.identities"
    assert db.scalar("select count(*) from auth.users where email = 'old@example.test'") == 1
    assert database.ensure_platform() is PlatformState.PRESENT and database.verify().ok


def test_seed_loads_demo_data(db: Db) -> None:
    db.database.seed()
    with db.connect() as conn:
        currencies = {r[0] for r in conn.execute("select distinct currency from public.cars")}
        states = conn.execute(
            "select count(*) filter (where is_published), count(*) filter (where not is_published),"
            " count(*) filter (where booking_status = 'booked') from public.cars"
        ).fetchone()
    assert {"INR", "JPY", "KWD"} <= currencies
    assert states is not None and states[0] > 0 and states[1] > 0 and states[2] == 1


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("create index concurrently cars_year_idx on public.cars (year);\n", "CREATE INDEX CONCURRENTLY"),
        ("alter table public.cars add column colour text;\ncommit;\n", "COMMIT"),
        ("vacuum public.cars;\n", "VACUUM"),
    ],
    ids=["concurrently", "commit", "vacuum"],
)
def test_what_cannot_run_in_the_transaction_is_refused_unless_declared(
    db: Db, tmp_path: Path, text: str, said: str
) -> None:
    project = _project_copy(tmp_path)
    (project / "migrations" / "20990101000000_colour.sql").write_text(
        "alter table public.cars add column colour text;\n"
    )
    (project / "migrations" / "20990102000000_odd.sql").write_text(text)
    before = _history(db)
    with pytest.raises(
        MigrationError,
        match=re.escape(f"20990102000000_odd.sql cannot run inside the migration's transaction ({said})"),
    ) as info:
        Database(db.url, project_dir=project).migrate()
    assert "-- carbook: no-transaction" in str(info.value.hint)
    # Refused before it ran: nothing of the run, not the file before it either.
    assert _history(db) == before
    assert (
        db.scalar(
            "select count(*) from information_schema.columns where table_name = 'cars' and column_name = 'colour'"
        )
        == 0
    )


def test_a_declared_no_transaction_migration_runs_on_its_own_between_the_others(
    db: Db, tmp_path: Path
) -> None:
    project = _project_copy(tmp_path)
    migrations = project / "migrations"
    (migrations / "20990101000000_colour.sql").write_text("alter table public.cars add column colour text;\n")
    (migrations / "20990102000000_index.sql").write_text(
        "-- carbook: no-transaction\n"
        "create index concurrently cars_colour_idx on public.cars (colour);\n"
        "create index concurrently cars_year_idx on public.cars (year); -- two of them\n"
    )
    (migrations / "20990103000000_after.sql").write_text("comment on column public.cars.colour is 'paint';\n")
    result = Database(db.url, project_dir=project).migrate()
    assert [m.version for m in result.applied] == ["20990101000000", "20990102000000", "20990103000000"]
    assert db.scalar("select to_regclass('public.cars_colour_idx') is not null") is True
    assert db.scalar("select to_regclass('public.cars_year_idx') is not null") is True
    assert (
        db.scalar(
            """select col_description(attrelid, attnum) from pg_attribute
            where attrelid = 'public.cars'::regclass and attname = 'colour'"""
        )
        == "paint"
    )
    assert [v for v, _ in _history(db)][-3:] == ["20990101000000", "20990102000000", "20990103000000"]
    assert Database(db.url, project_dir=project).migrate().applied == ()


def test_the_realtime_migration_keeps_a_publication_of_every_table_as_it_is(empty_db: Db) -> None:
    """Hosted projects may publish every table (FOR ALL TABLES): adding one table to such a
    publication is an error, so the migration must leave it alone, and still run."""
    with empty_db.connect() as conn:
        conn.execute("create publication supabase_realtime for all tables")
    empty_db.database.migrate()
    with empty_db.connect() as conn:
        row = conn.execute(
            "select puballtables from pg_publication where pubname = 'supabase_realtime'"
        ).fetchone()
        cars = conn.execute(
            "select count(*) from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'cars'"
        ).fetchone()
    assert row == (True,) and cars == (1,)
