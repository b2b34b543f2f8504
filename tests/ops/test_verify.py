"""`verify` names what is wrong; the SQL script fails loudly on the same breakage."""

from __future__ import annotations

import subprocess

import pytest

from carbook_sdk import supabase_dir
from carbook_stack.local_postgres import find_pg_bindir
from tests.helpers import Db

SCRIPT = supabase_dir() / "tests" / "verify_database_structure.sql"

BREAKAGES: dict[str, tuple[str, ...]] = {
    "search_path reset": (
        "alter function public.book_car_atomic(uuid) reset search_path",
        "function:book_car_atomic.search_path",
    ),
    "rls disabled": (
        "alter table public.cars disable row level security",
        "rls:every public table",
        "rls:public.cars",
    ),
    "policy dropped": ("drop policy cars_select_anon on public.cars", "policy:public.cars.cars_select_anon"),
    # Right name, but an anonymous user would see the cars booked under their id again.
    "anonymous check dropped": (
        "alter policy cars_select_authenticated on public.cars using ("
        "(is_published and booking_status = 'available') or booked_by = (select auth.uid())"
        " or (select private.is_admin()))",
        "policy:public.cars.cars_select_authenticated",
    ),
    "anon may execute": (
        "grant execute on function public.book_car_atomic(uuid) to anon",
        "function:book_car_atomic.execute:anon",
    ),
    # postgres_changes (20250924000000) would stream no car.
    "cars unpublished from realtime": (
        "alter publication supabase_realtime drop table public.cars",
        "publication:supabase_realtime.public.cars",
    ),
    "index dropped": (
        "drop index public.cars_available_listing_idx",
        "index:public.cars_available_listing_idx",
    ),
    "constraint dropped": (
        "alter table public.cars drop constraint cars_currency_iso4217",
        "constraint:cars.cars_currency_iso4217",
    ),
    "not security definer": (
        "alter function public.book_car_atomic(uuid) security invoker",
        "function:book_car_atomic.security_definer",
    ),
    "bucket made private": ("update storage.buckets set public = false", "bucket:car-images"),
    # Right name, wider rule: any signed-in user could change any car.
    "policy widened": (
        "alter policy cars_update_admin on public.cars using (true) with check (true)",
        "policy:public.cars.cars_update_admin",
    ),
    "storage policy widened": (
        "alter policy car_images_delete_admin on storage.objects using (bucket_id = 'car-images')",
        "policy:storage.objects.car_images_delete_admin",
    ),
    "is_admin not security definer": (
        "alter function private.is_admin() security invoker",
        "function:private.is_admin.security_definer",
    ),
    "role check dropped": (
        "alter table public.user_roles drop constraint user_roles_role_known",
        "constraint:user_roles.user_roles_role_known",
    ),
    "audit column retyped": (
        "alter table public.audit_logs alter column actor_id type text",
        "column:audit_logs.actor_id",
    ),
    "audit index dropped": (
        "drop index public.audit_logs_created_at_idx",
        "index:public.audit_logs_created_at_idx",
    ),
    "anon may release": (
        "grant execute on function public.release_car(uuid, text) to anon",
        "function:public.release_car(uuid,text)",
    ),
    "booking helper callable through the API": (
        "grant execute on function private.end_booking(uuid, text, boolean) to authenticated",
        "function:private.end_booking(uuid,text,boolean)",
    ),
    # Right name, wider rule: an admin could delete a booked car from under its booker.
    "delete policy widened": (
        "alter policy cars_delete_admin on public.cars using ((select private.is_admin()))",
        "policy:public.cars.cars_delete_admin",
    ),
    "service_role may rewrite the audit trail": (
        "grant update, delete on public.audit_logs to service_role",
        "grant:public.audit_logs.append_only:service_role",
    ),
}


def _psql(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(find_pg_bindir() / "psql"), url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_verify_is_green_on_a_migrated_database(db: Db) -> None:
    report = db.database.verify()
    assert report.failed == ()
    names = {c.name for c in report.checks}
    assert {
        "column:cars.booking_status",
        "function:book_car_atomic.search_path",
        "rls:public.cars",
        "policy:storage.objects.car_images_insert_admin",
        "index:public.cars_available_listing_idx",
        "bucket:car-images",
        "migration:20250916010000_atomic_booking_implementation",
    } <= names


def test_sql_script_passes_with_psql(db: Db) -> None:
    result = _psql(db.url)
    assert result.returncode == 0, result.stderr
    assert "verify ok" in result.stderr


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_verify_names_the_broken_element(db: Db, breakage: str) -> None:
    sql, *checks = BREAKAGES[breakage]
    with db.connect() as conn:
        conn.execute(sql)  # type: ignore[arg-type]
    report = db.database.verify()
    assert [c.name for c in report.failed] == checks
    result = _psql(db.url)
    assert result.returncode != 0
    assert f"verify failed: {checks[0]}" in result.stderr


def test_verify_reports_missing_platform(empty_db: Db) -> None:
    report = empty_db.database.verify()
    assert not report.ok
    assert "platform" in {c.name for c in report.failed}


def _function_from(migration: str, signature: str) -> str:
    """The ``create or replace function`` statement for ``signature`` in a migration file."""
    text = (supabase_dir() / "migrations" / migration).read_text()
    start = text.index(f"create or replace function {signature}")
    return text[start : text.index("$$;", start) + 3]


@pytest.mark.parametrize(
    "migration",
    ["20250916010000_atomic_booking_implementation.sql", "20250920000000_book_car_read_first.sql"],
)
def test_verify_reports_an_older_body_of_book_car_atomic(db: Db, migration: str) -> None:
    # Lock first (20250916010000), or read first but booking for anonymous users
    # (20250920000000), put back over 20250921000000's body.
    with db.connect() as conn:
        conn.execute(_function_from(migration, "public.book_car_atomic"))  # type: ignore[arg-type]
    report = db.database.verify()
    failed = {c.name: c.detail for c in report.failed}
    assert list(failed) == ["function:book_car_atomic.body"]
    assert "re-apply 20250921000000" in failed["function:book_car_atomic.body"]
    # The psql script fails on it too.
    assert _psql(db.url).returncode != 0


def test_verify_reports_an_admin_test_that_lets_anonymous_users_in(db: Db) -> None:
    with db.connect() as conn:
        conn.execute(_function_from("20250916000000_base_schema.sql", "private.is_admin"))  # type: ignore[arg-type]
    failed = {c.name: c.detail for c in db.database.verify().failed}
    assert list(failed) == ["function:private.is_admin.body"]
    assert "re-apply 20250921000000" in failed["function:private.is_admin.body"]
