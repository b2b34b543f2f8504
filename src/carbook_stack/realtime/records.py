"""What the database says of a change, and what a subscriber is sent of it.

The records are cast by the table's own column types from wal2json's values (so a
timestamp, a uuid or a jsonb reads as Realtime sends it), filters are judged by
PostgreSQL with the column's type, and the RLS check runs as the subscriber: its role and
``request.jwt.claims`` set in a transaction of its own, the row looked up by key as the
change is polled (hosted Realtime's ``apply_rls`` does the same).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from .bindings import OPERATORS, Filter

__all__ = ["MAX_RECORD_BYTES", "Table", "commit_time", "shape", "table_info", "typed_records", "visible"]

log = logging.getLogger("carbook.realtime.changes")

MAX_RECORD_BYTES = 1024 * 1024


@dataclass
class Table:
    oid: int
    rls: bool
    #: column -> (type name as the clients know it (pg_type.typname), SQL type)
    columns: dict[str, tuple[str, str]]
    pk: tuple[str, ...]
    selectable: dict[str, set[str]] = field(default_factory=dict)  # role -> columns
    name: tuple[str, str] = ("", "")


def commit_time(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    stamp = datetime.fromisoformat(raw).astimezone(UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


async def table_info(conn: psycopg.AsyncConnection[Any], schema: str, table: str, roles: set[str]) -> Table:
    """The table as a change of it needs: its columns, key, RLS, and what each role may select.

    Raises:
        ValueError: the table is gone.
    """
    cur = await conn.execute(
        """select c.oid, c.relrowsecurity, a.attname, t.typname,
                  pg_catalog.format_type(a.atttypid, a.atttypmod),
                  coalesce(a.attnum = any(k.conkey), false)
             from pg_catalog.pg_class c
             join pg_catalog.pg_namespace n on n.oid = c.relnamespace
             join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
             join pg_catalog.pg_type t on t.oid = a.atttypid
             left join pg_catalog.pg_constraint k on k.conrelid = c.oid and k.contype = 'p'
            where n.nspname = %s and c.relname = %s order by a.attnum""",
        (schema, table),
    )
    rows = await cur.fetchall()
    if not rows:
        raise ValueError(f"{schema}.{table} is gone")
    info = Table(
        oid=rows[0][0],
        rls=rows[0][1],
        columns={r[2]: (r[3], r[4]) for r in rows},
        pk=tuple(r[2] for r in rows if r[5]),
        name=(schema, table),
    )
    for role in roles:
        cur = await conn.execute(
            """select a.attname from pg_catalog.pg_attribute a
                where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
                  and pg_catalog.has_column_privilege(%s, a.attrelid, a.attnum, 'SELECT')""",
            (info.oid, role),
        )
        info.selectable[role] = {r[0] for r in await cur.fetchall()}
    return info


async def typed_records(
    conn: psycopg.AsyncConnection[Any],
    info: Table,
    entity: sql.Composable,
    changes: list[tuple[str, dict[str, Any]]],
    filter_sets: list[tuple[Filter, ...]],
) -> list[tuple[dict[str, Any] | None, dict[str, Any] | None, list[bool]]]:
    """Each change's new and old record as typed JSON (cast by the table's own column
    types, as Realtime casts them), and whether each filter set lets it through."""
    preds: list[sql.Composable] = []
    params: list[Any] = [json.dumps([c for _, c in changes])]
    for fs in filter_sets:
        parts: list[sql.Composable] = []
        for f in fs:
            expr = sql.SQL("(r.t).{} {} (%s)").format(sql.Identifier(f.column), sql.SQL(OPERATORS[f.op]))
            if f.negate:
                expr = sql.SQL("not ({})").format(expr)
            parts.append(sql.SQL("coalesce({}, false)").format(expr))
            params.append(f.value)
        preds.append(sql.SQL(" and ").join(parts) if parts else sql.SQL("true"))
    values = sql.SQL(
        "case when c->>'type' in ('json', 'jsonb') then (c->>'value')::jsonb else c->'value' end"
    )
    query = sql.SQL(
        """with w as (select d, i from jsonb_array_elements(%s::jsonb) with ordinality as x(d, i)),
           v as (select w.i, w.d->>'action' as action,
                   case when w.d ? 'columns' then pg_catalog.jsonb_populate_record(null::{t},
                     (select pg_catalog.jsonb_object_agg(c->>'name', {v}) from jsonb_array_elements(w.d->'columns') c)) end as n,
                   case when w.d ? 'identity' then pg_catalog.jsonb_populate_record(null::{t},
                     (select pg_catalog.jsonb_object_agg(c->>'name', {v}) from jsonb_array_elements(w.d->'identity') c)) end as o
                 from w),
           r as (select v.*, case when v.action = 'D' then v.o else v.n end as t from v)
           select to_jsonb(r.n), to_jsonb(r.o) {preds} from r order by r.i"""
    ).format(
        t=entity,
        v=values,
        preds=sql.SQL("").join(sql.SQL(", ") + p for p in preds),
    )
    cur = await conn.execute(query, params)
    out = []
    for (_, change), row in zip(changes, await cur.fetchall(), strict=True):
        new_keys = {c["name"] for c in change.get("columns", ())}
        old_keys = {c["name"] for c in change.get("identity", ())}
        new = {k: v for k, v in row[0].items() if k in new_keys} if row[0] is not None else None
        old = {k: v for k, v in row[1].items() if k in old_keys} if row[1] is not None else None
        out.append((new, old, list(row[2:])))
    return out


async def visible(
    pool: AsyncConnectionPool[Any],
    info: Table,
    token_claims: dict[str, Any],
    role: str,
    records: list[tuple[int, dict[str, Any]]],
    table: str,
) -> set[int] | None:
    """Which changes (by index) the subscriber may select; None when its policy failed.

    Each row is judged as it was committed: the table's SELECT policies that apply to the
    role (permissive ones or-ed, restrictive ones and-ed, none means no row), evaluated on
    the decoded row as the subscriber, with its claims. Hosted Realtime looks the row up
    by key when it polls, so a row changed again before the poll is judged by its later
    state (an unpublished car published a moment later would show its unpublished insert).
    """
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "select rolbypassrls from pg_catalog.pg_roles where rolname = %s", (role,)
            )
            bypass = await cur.fetchone()
            if bypass is not None and bypass[0]:
                return {i for i, _ in records}
            cur = await conn.execute(
                """select pg_catalog.pg_get_expr(p.polqual, p.polrelid), p.polpermissive
                     from pg_catalog.pg_policy p
                    where p.polrelid = %s and p.polcmd in ('r', '*')
                      and (0 = any(p.polroles) or exists (
                            select 1 from unnest(p.polroles) r where r <> 0 and pg_catalog.pg_has_role(%s, r, 'member')))""",
                (info.oid, role),
            )
            policies = await cur.fetchall()
            permissive = [sql.SQL("({})").format(sql.SQL(q)) for q, ok in policies if ok and q]
            restrictive = [
                sql.SQL("({})").format(sql.SQL(q if q else "false")) for q, ok in policies if not ok
            ]
            if not permissive:
                return set()
            pred = sql.SQL(" and ").join(
                [sql.SQL("({})").format(sql.SQL(" or ").join(permissive)), *restrictive]
            )
            query = sql.SQL(
                """select (x.d->>'i')::int
                     from jsonb_array_elements(%s::jsonb) as x(d),
                          lateral pg_catalog.jsonb_populate_record(null::{t}, x.d->'r') as {alias}
                    where {pred}"""
            ).format(t=sql.Identifier(*info.name), alias=sql.Identifier(table), pred=pred)
            rows = json.dumps([{"i": i, "r": rec} for i, rec in records])
            async with conn.transaction():
                await conn.execute(
                    """select set_config('role', %s, true), set_config('request.jwt.claims', %s, true),
                              set_config('request.jwt.claim.sub', %s, true), set_config('request.jwt.claim.role', %s, true)""",
                    (role, json.dumps(token_claims), str(token_claims.get("sub") or ""), role),
                )
                cur = await conn.execute(query, (rows,))
                return {r[0] for r in await cur.fetchall()}
    except psycopg.Error as exc:
        log.warning("postgres_changes: RLS check failed for a %s subscriber: %s", role, exc)
        return None


def shape(
    info: Table,
    base: dict[str, Any],
    stamp: str | None,
    size: int,
    action: str,
    new: dict[str, Any] | None,
    old: dict[str, Any] | None,
    sel: set[str],
    select: tuple[str, ...] | None,
) -> dict[str, Any]:
    """What a subscriber is sent of a change: the columns its role may select (and its
    binding's ``select``, the key always), a delete's old record reduced to the key under
    RLS, and values over 64 bytes dropped from a record over 1 MB, as Realtime sends them."""

    def shown(col: str) -> bool:
        return col in sel and (select is None or col in select or col in info.pk)

    too_big = size > MAX_RECORD_BYTES

    def keep(rec: dict[str, Any] | None, only_pk: bool = False) -> dict[str, Any]:
        return {
            k: v
            for k, v in (rec or {}).items()
            if shown(k) and (not only_pk or k in info.pk) and (not too_big or len(json.dumps(v)) <= 64)
        }

    data: dict[str, Any] = {
        **base,
        "commit_timestamp": stamp,
        "columns": [{"name": c, "type": t} for c, (t, _) in info.columns.items() if shown(c)],
        "errors": ["Error 413: Payload Too Large"] if too_big else None,
    }
    if action in ("INSERT", "UPDATE"):
        data["record"] = keep(new)
    if action == "UPDATE":
        data["old_record"] = keep(old)
    if action == "DELETE":
        data["old_record"] = keep(old, only_pk=info.rls)
    return data
