"""The schema linter: the project passes (one documented, intended finding), and every
lint fires when the schema is broken on purpose."""

from __future__ import annotations

import pytest

from tests.helpers import Db

BREAKAGES: dict[str, tuple[str, str]] = {
    "function_search_path_mutable": (
        "create function public.helper() returns int language sql as 'select 1'",
        "public.helper()",
    ),
    "rls_disabled_in_public": ("alter table public.cars disable row level security", "public.cars"),
    "anon_security_definer_function_executable": (
        "grant execute on function public.book_car_atomic(uuid) to anon",
        "public.book_car_atomic(car_id uuid)",
    ),
    "authenticated_security_definer_function_executable": (
        "create function public.elevated() returns int language sql security definer set search_path = ''"
        " as 'select 1'",
        "public.elevated()",
    ),
    "rls_references_user_metadata": (
        "create policy meta on public.audit_logs for select to anon"
        " using ((auth.jwt() -> 'user_metadata' ->> 'role') = 'admin')",
        "public.audit_logs.meta",
    ),
    "auth_users_exposed": (
        "create view public.people with (security_invoker = on) as select id, email from auth.users",
        "public.people",
    ),
    "security_definer_view": (
        "create view public.car_names as select id, make from public.cars",
        "public.car_names",
    ),
    "unindexed_foreign_keys": (
        "create table public.notes (id int primary key, car uuid references public.cars (id));"
        " alter table public.notes enable row level security",
        "public.notes.notes_car_fkey",
    ),
    "multiple_permissive_policies": (
        "create policy also_anon on public.cars for select to anon using (year > 2000)",
        "public.cars anon SELECT",
    ),
    "auth_rls_initplan": (
        "create policy per_row on public.cars for delete to authenticated using (booked_by = auth.uid())",
        "public.cars.per_row",
    ),
    "permissive_write_policy_always_true": (
        "create policy anyone on public.user_roles for insert to authenticated with check (true)",
        "public.user_roles.anyone",
    ),
    "no_primary_key": (
        "create table public.loose (x int); alter table public.loose enable row level security",
        "public.loose",
    ),
}


def test_the_project_passes_every_lint_but_the_intended_ones(db: Db) -> None:
    report = db.database.lint()
    assert report.exposed_schemas == ("public",)
    assert report.problems == ()
    assert sorted((f.lint, f.object) for f in report.findings) == [
        ("authenticated_security_definer_function_executable", f"public.{fn}")
        for fn in (
            "admin_bookings()",
            "book_car_atomic(car_id uuid)",
            "cancel_booking(car_id uuid)",
            "release_car(car_id uuid, reason text)",
        )
    ]
    assert all(f.intended for f in report.findings) and report.ok


def test_there_is_a_breakage_for_every_lint() -> None:
    from carbook_sdk.ops.lint import LINTS

    assert {lint.name for lint in LINTS} == set(BREAKAGES)


@pytest.mark.parametrize("lint", sorted(BREAKAGES))
def test_each_lint_fires_on_a_broken_schema(db: Db, lint: str) -> None:
    sql, obj = BREAKAGES[lint]
    with db.connect() as conn:
        conn.execute(sql)  # type: ignore[arg-type]
    report = db.database.lint()
    found = [f for f in report.problems if f.lint == lint]
    assert [f.object for f in found] == [obj]
    assert not report.ok


@pytest.mark.parametrize(
    ("sql", "objects"),
    [
        (
            "create policy all_for_admins on public.cars for all to authenticated using (true)",
            {
                "public.cars authenticated SELECT",
                "public.cars authenticated INSERT",
                "public.cars authenticated UPDATE",
                "public.cars authenticated DELETE",
            },
        ),
        ("create policy to_everyone on public.cars for select to public using (true)",
         {"public.cars anon SELECT", "public.cars authenticated SELECT"}),
    ],
)  # fmt: skip
def test_multiple_permissive_policies_counts_for_all_and_to_public(
    db: Db, sql: str, objects: set[str]
) -> None:
    with db.connect() as conn:
        conn.execute(sql)  # type: ignore[arg-type]
    found = {f.object for f in db.database.lint().problems if f.lint == "multiple_permissive_policies"}
    assert found == objects


def test_exposed_schema_lints_follow_the_exposed_schemas(db: Db) -> None:
    with db.connect() as conn:
        conn.execute("create schema api; create table api.open (id int primary key)")
    assert "api.open" not in {f.object for f in db.database.lint().problems}
    assert "api.open" in {f.object for f in db.database.lint(("public", "api")).problems}
