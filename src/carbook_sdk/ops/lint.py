"""Supabase-style schema lints (after splinter, Supabase's database linter).

Each lint is one catalog query returning ``(object, detail)`` rows: a row is a finding.
The exposed schemas (what PostgREST serves) come from ``pgrst.db_schemas``, which the
runner sets for its transaction, so the exposed-schema lints can never pass silently by
looking at nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["INTENDED", "LINTS", "Finding", "Lint", "LintReport"]

Level = Literal["ERROR", "WARN", "INFO"]

# Schemas Supabase owns: their functions and tables are the platform's, not the project's.
_PLATFORM = (
    "'pg_catalog', 'information_schema', 'auth', 'storage', 'extensions', 'graphql', 'graphql_public', "
    "'realtime', 'supabase_functions', 'supabase_migrations', 'vault', 'pgsodium', 'pgsodium_masks', "
    "'pgbouncer', 'net', 'cron', 'pgtle', 'tiger', 'topology', 'pg_toast'"
)
_EXPOSED = "string_to_array(replace(current_setting('pgrst.db_schemas', true), ' ', ''), ',')"


@dataclass(frozen=True)
class Lint:
    name: str
    level: Level
    title: str
    sql: str


def _security_definer_executable_by(role: str, detail: str) -> Lint:
    return Lint(
        f"{role}_security_definer_function_executable",
        "WARN",
        f"SECURITY DEFINER function executable by {role}",
        f"""select n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                   '{detail}'
              from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where p.prosecdef and n.nspname = any({_EXPOSED})
               and has_function_privilege('{role}', p.oid, 'execute')""",
    )


LINTS: tuple[Lint, ...] = (
    Lint(
        "function_search_path_mutable",
        "WARN",
        "Function search_path is mutable",
        f"""select n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                   'no fixed search_path: set search_path = '''''
              from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where n.nspname not in ({_PLATFORM}) and n.nspname not like 'pg_temp%'
               and p.prokind in ('f', 'p')
               and not exists (select 1 from unnest(coalesce(p.proconfig, '{{}}')) c where c like 'search_path=%')
               and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')""",
    ),
    Lint(
        "rls_disabled_in_public",
        "ERROR",
        "RLS disabled in an exposed schema",
        f"""select n.nspname || '.' || c.relname, 'row-level security is not enabled'
              from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind in ('r', 'p') and not c.relrowsecurity
               and n.nspname = any({_EXPOSED})""",
    ),
    _security_definer_executable_by("anon", "anon can execute a SECURITY DEFINER function through the API"),
    _security_definer_executable_by(
        "authenticated", "signed-in users can execute a SECURITY DEFINER function through the API"
    ),
    Lint(
        "rls_references_user_metadata",
        "ERROR",
        "Policy references user_metadata",
        """select schemaname || '.' || tablename || '.' || policyname,
                  'user_metadata is writable by the user: never authorise on it'
             from pg_policies
            where coalesce(qual, '') || coalesce(with_check, '') ~* 'user_metadata'""",
    ),
    Lint(
        "auth_users_exposed",
        "ERROR",
        "View over auth.users in an exposed schema",
        f"""select distinct n.nspname || '.' || c.relname, 'exposes auth.users through the API'
              from pg_depend d
              join pg_rewrite r on r.oid = d.objid
              join pg_class c on c.oid = r.ev_class
              join pg_namespace n on n.oid = c.relnamespace
             where d.refobjid = 'auth.users'::regclass and c.relkind in ('v', 'm')
               and n.nspname = any({_EXPOSED})""",
    ),
    Lint(
        "security_definer_view",
        "ERROR",
        "View runs with its owner's rights",
        f"""select n.nspname || '.' || c.relname, 'a view without security_invoker bypasses the caller''s RLS'
              from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind = 'v' and n.nspname = any({_EXPOSED})
               and not coalesce(c.reloptions, '{{}}') && array['security_invoker=true', 'security_invoker=on']""",
    ),
    Lint(
        "unindexed_foreign_keys",
        "INFO",
        "Foreign key without an index",
        f"""select n.nspname || '.' || c.relname || '.' || con.conname, 'no index starts with the key''s columns'
              from pg_constraint con
              join pg_class c on c.oid = con.conrelid
              join pg_namespace n on n.oid = c.relnamespace
             where con.contype = 'f' and n.nspname not in ({_PLATFORM})
               and not exists (
                 select 1 from pg_index i
                  where i.indrelid = con.conrelid
                    and (i.indkey::int2[])[0:cardinality(con.conkey) - 1] operator(pg_catalog.@>) con.conkey
                    and (i.indkey::int2[])[0:cardinality(con.conkey) - 1] operator(pg_catalog.<@) con.conkey)""",
    ),
    Lint(
        "multiple_permissive_policies",
        "WARN",
        "Several permissive policies for one role and action",
        # A FOR ALL policy counts for each action, and a policy TO public for every API
        # role, as splinter counts them.
        """select schemaname || '.' || tablename || ' ' || r.role || ' ' || a.action,
                  string_agg(policyname, ', ' order by policyname)
             from pg_policies p,
                  unnest(case when 'public' = any (p.roles)
                              then array['anon', 'authenticated', 'service_role']::name[]
                              else p.roles end) as r(role),
                  unnest(case when p.cmd = 'ALL'
                              then array['SELECT', 'INSERT', 'UPDATE', 'DELETE']
                              else array[p.cmd] end) as a(action)
            where permissive = 'PERMISSIVE'
            group by schemaname, tablename, r.role, a.action
           having count(*) > 1""",
    ),
    Lint(
        "auth_rls_initplan",
        "WARN",
        "auth call in a policy re-evaluated for every row",
        """select schemaname || '.' || tablename || '.' || policyname,
                  'wrap auth.<fn>(), realtime.topic() and is_admin() calls as (select …) so they run once per statement'
             from pg_policies
            where regexp_replace(coalesce(qual, '') || ' ' || coalesce(with_check, ''),
                                 '\\(\\s*select\\s+(auth|private|realtime)\\.\\w+\\(\\)[^()]*\\)', '', 'gi')
                  ~* '(auth\\.(uid|jwt|role|email)|private\\.is_admin|realtime\\.topic)\\(\\)'""",
    ),
    Lint(
        "permissive_write_policy_always_true",
        "WARN",
        "Write policy that lets everyone through",
        """select schemaname || '.' || tablename || '.' || policyname, cmd || ' policy is always true'
             from pg_policies
            where cmd in ('INSERT', 'UPDATE', 'DELETE', 'ALL') and permissive = 'PERMISSIVE'
              and (btrim(coalesce(qual, '')) in ('true', '(true)')
                   or btrim(coalesce(with_check, '')) in ('true', '(true)'))""",
    ),
    Lint(
        "no_primary_key",
        "INFO",
        "Table without a primary key",
        f"""select n.nspname || '.' || c.relname, 'no primary key'
              from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind in ('r', 'p') and n.nspname = any({_EXPOSED})
               and not exists (select 1 from pg_constraint k where k.conrelid = c.oid and k.contype = 'p')""",
    ),
)

#: Findings that are the design, not a mistake: (lint, object) → why.
INTENDED: dict[tuple[str, str], str] = {
    ("authenticated_security_definer_function_executable", "public.book_car_atomic(car_id uuid)"): (
        "signed-in users book through this function; it takes the caller only from the JWT"
    ),
    ("authenticated_security_definer_function_executable", "public.release_car(car_id uuid, reason text)"): (
        "admins release and bookers cancel through this function; it takes the caller only from the JWT"
    ),
    ("authenticated_security_definer_function_executable", "public.cancel_booking(car_id uuid)"): (
        "bookers cancel their own booking through this function; it takes the caller only from the JWT"
    ),
    ("authenticated_security_definer_function_executable", "public.admin_bookings()"): (
        "admins read bookers' emails through this function; it answers only when private.is_admin() is true"
    ),
}


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    lint: str
    level: Level
    title: str
    object: str
    detail: str
    #: Why this finding is the design (None for a real problem).
    intended: str | None = None


class LintReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    exposed_schemas: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def problems(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.intended is None)

    @property
    def ok(self) -> bool:
        return not self.problems
