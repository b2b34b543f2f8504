"""postgres_changes: every committed change of a table in the ``supabase_realtime``
publication, to each subscriber whose role and claims may select the row.

The source is PostgreSQL's logical decoding, read as hosted Realtime reads it: a
temporary replication slot with the wal2json plugin, polled with
``pg_logical_slot_get_changes`` over a plain connection (psycopg speaks no replication
protocol; wal2json needs none). A temporary slot belongs to its connection: when the
service stops or is killed, the server drops it, so no slot is left holding WAL. The slot
is made at the first subscription and given up after a while without any.

What each subscriber gets follows Realtime's ``apply_rls``: the columns its role may
select; an INSERT or UPDATE only if, as that role with its ``request.jwt.claims``, it may
select the row (checked by primary key, a query per role and claims per batch); a DELETE
to every matching subscriber whose role may select the key, with only the key when the
table has RLS (a deleted row cannot be checked).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from .bindings import Binding, describe
from .channels import Join
from .protocol import Message
from .records import commit_time, shape, table_info, typed_records, visible

__all__ = ["PUBLICATION", "SLOT_PREFIX", "ChangeFeed", "ChangesError"]

log = logging.getLogger("carbook.realtime.changes")

PUBLICATION = "supabase_realtime"
SLOT_PREFIX = "carbook_realtime_"
POLL_INTERVAL = 0.1  # Realtime's poll_interval_ms
MAX_CHANGES = 1000
IDLE_CLOSE = 30.0  # seconds without a subscription before the slot is given up
_W2J = (
    "'include-pk', 'true', 'include-transaction', 'true', 'include-timestamp', 'true', "
    "'include-type-oids', 'true', 'format-version', '2'"
)


class ChangesError(Exception):
    """A subscription Realtime would refuse, with its message (sent as a ``system`` error)."""


def _subscribe_error(b: Binding, exc: psycopg.Error | str) -> ChangesError:
    if isinstance(exc, str):
        detail = f"ERROR P0001 (raise_exception) {exc}"
    else:
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
        detail = f"ERROR {exc.sqlstate} ({name}) {exc.diag.message_primary or exc}"
    return ChangesError(
        "Unable to subscribe to changes with given parameters. An exception happened so please "
        f"check your connect parameters: {describe(b)}. Exception: {detail}"
    )


def _wal2json_quote(schema: str, table: str) -> str:
    def esc(name: str) -> str:
        return re.sub(r"([\\ ',.*])", r"\\\1", name)

    return f"{esc(schema)}.{esc(table)}"


class ChangeFeed:
    """The slot, its poller, and every join's postgres_changes subscriptions."""

    def __init__(self, db_url: str, pool: AsyncConnectionPool[Any], live: Callable[[Join], bool]) -> None:
        self.db_url = db_url
        self.pool = pool
        self.live = live
        self.subs: dict[Join, list[Binding]] = {}
        #: Where each join's subscription began in the WAL (a commit after it is heard).
        self.since: dict[Join, int] = {}
        self.slot = f"{SLOT_PREFIX}{os.getpid()}_{secrets.token_hex(3)}"
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # Subscriptions ---------------------------------------------------------------------
    async def subscribe(self, join: Join, bindings: list[Binding]) -> None:
        """Check the bindings as Realtime does and start delivering them to ``join``.

        Raises:
            ChangesError: a table not in the publication, a bad filter column or value, or
                a database that cannot decode changes; Realtime's messages.
        """
        async with self.pool.connection() as conn:
            for b in bindings:
                await self._check(conn, join.token.role, b)
        await self._ensure_slot()
        # A subscription hears the transactions that commit from now on, not the ones the
        # slot still holds from before it (their commit records are written before this).
        async with self.pool.connection() as conn:
            cur = await conn.execute("select pg_catalog.pg_current_wal_insert_lsn()::text")
            row = await cur.fetchone()
        self.since[join] = _lsn(row[0] if row else "0/0")
        self.subs[join] = bindings

    async def _check(self, conn: psycopg.AsyncConnection[Any], role: str, b: Binding) -> None:
        cur = await conn.execute(
            """select c.oid from pg_catalog.pg_publication_tables p
                 join pg_catalog.pg_namespace n on n.nspname = p.schemaname
                 join pg_catalog.pg_class c on c.relnamespace = n.oid and c.relname = p.tablename
                where p.pubname = %s and (%s = '*' or p.schemaname = %s) and (%s = '*' or p.tablename = %s)""",
            (PUBLICATION, b.schema, b.schema, b.table, b.table),
        )
        oids = [r[0] for r in await cur.fetchall()]
        if not oids:
            raise ChangesError(
                "Unable to subscribe to changes with given parameters. Please check Realtime is "
                f"enabled for the given connect parameters: {describe(b)}"
            )
        for oid in oids:
            cur = await conn.execute(
                """select a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
                     from pg_catalog.pg_attribute a
                    where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
                      and pg_catalog.has_column_privilege(%s, a.attrelid, a.attnum, 'SELECT')""",
                (oid, role),
            )
            types = dict(await cur.fetchall())
            for f in b.filters:
                if f.column not in types:
                    raise _subscribe_error(b, f"invalid column for filter {f.column}")
                query = (
                    "select pg_catalog.cardinality(%s::{}[])" if f.op == "in" else "select %s::{} is not null"
                )
                try:
                    cur = await conn.execute(sql.SQL(query).format(sql.SQL(types[f.column])), (f.value,))
                except psycopg.Error as exc:
                    raise _subscribe_error(b, exc) from None
                row = await cur.fetchone()
                if f.op == "in" and row is not None and (row[0] or 0) > 100:
                    raise _subscribe_error(b, "too many values for `in` filter. Maximum 100")
            for col in b.select or ():
                if col not in types:
                    raise _subscribe_error(b, f"invalid column for select {col}")

    def _drop_dead(self) -> None:
        for join in [j for j in self.subs if not self.live(j)]:
            del self.subs[join]
            self.since.pop(join, None)

    # The slot --------------------------------------------------------------------------
    async def cleanup(self) -> None:
        """Drop slots a stopped or killed service of this database left (not in use)."""
        with contextlib.suppress(psycopg.Error):
            async with self.pool.connection() as conn:
                await conn.execute(
                    """select pg_catalog.pg_drop_replication_slot(slot_name) from pg_catalog.pg_replication_slots
                        where slot_name like %s and database = current_database() and not active""",
                    (SLOT_PREFIX.replace("_", r"\_") + "%",),
                )

    async def _ensure_slot(self) -> None:
        async with self._lock:
            if self._task is not None and not self._task.done():
                return
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.db_url, autocommit=True, application_name="carbook_realtime_changes"
                )
            except psycopg.Error:
                raise ChangesError("Realtime was unable to connect to the project database") from None
            try:
                cur = await conn.execute("select current_setting('wal_level')")
                row = await cur.fetchone()
                if row is None or row[0] != "logical":
                    raise ChangesError(
                        "Unable to subscribe to changes: the database does not decode its changes "
                        f"(wal_level is {row[0] if row else 'unknown'}, it must be logical; restart the stack)"
                    )
                # Making a slot waits for the transactions running now; never for ever.
                await conn.execute("set statement_timeout = '10s'")
                await conn.execute(
                    "select pg_catalog.pg_create_logical_replication_slot(%s, 'wal2json', true)", (self.slot,)
                )
                await conn.execute("set statement_timeout = 0")
            except ChangesError:
                await conn.close()
                raise
            except psycopg.Error as exc:
                await conn.close()
                if exc.sqlstate == "58P01":
                    raise ChangesError(
                        "Unable to subscribe to changes: the wal2json decoding plugin is not installed "
                        "on the database server"
                    ) from None
                raise ChangesError(
                    f"Unable to subscribe to changes: {exc.diag.message_primary or 'the database refused'}"
                ) from None
            self._task = asyncio.create_task(self._run(conn))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, conn: psycopg.AsyncConnection[Any]) -> None:
        idle_since: float | None = None
        try:
            while True:
                self._drop_dead()
                if self.subs:
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > IDLE_CLOSE:
                    return
                rows = await self._poll(conn)
                if rows:
                    try:
                        await self._dispatch(rows)
                    except (psycopg.Error, ValueError):  # one batch's failure is never the service's
                        log.exception(
                            "postgres_changes: a batch of %d changes could not be delivered", len(rows)
                        )
                if len(rows) < MAX_CHANGES:
                    await asyncio.sleep(POLL_INTERVAL)
        except psycopg.Error as exc:
            log.warning("postgres_changes: the change feed stopped: %s", exc)
            for join in list(self.subs):
                join.system(
                    "postgres_changes", "error", "Realtime lost its connection to the project database"
                )
            self.subs.clear()
        finally:
            with contextlib.suppress(psycopg.Error):
                await conn.close()  # the temporary slot goes with its connection

    async def _poll(self, conn: psycopg.AsyncConnection[Any]) -> list[tuple[str, str]]:
        cur = await conn.execute(
            """select p.pubinsert, p.pubupdate, p.pubdelete, t.schemaname, t.tablename
                 from pg_catalog.pg_publication p
                 left join pg_catalog.pg_publication_tables t on t.pubname = p.pubname
                where p.pubname = %s""",
            (PUBLICATION,),
        )
        pub = await cur.fetchall()
        actions = (
            ",".join(a for a, on in zip(("insert", "update", "delete"), pub[0][:3], strict=True) if on)
            if pub
            else ""
        )
        tables = ",".join(_wal2json_quote(r[3], r[4]) for r in pub if r[3] is not None)
        if not actions or not tables:
            # Nothing published: the slot is still consumed (it must not hold WAL), nothing decoded.
            actions, tables = "insert", "carbook\\ none.carbook\\ none"
        cur = await conn.execute(
            sql.SQL(
                "select lsn::text, data from pg_catalog.pg_logical_slot_get_changes(%s, null, %s, "
                + _W2J
                + ", 'actions', %s, 'add-tables', %s)"
            ),
            (self.slot, MAX_CHANGES, actions, tables),
        )
        return [(r[0], r[1]) for r in await cur.fetchall()]

    # Delivery --------------------------------------------------------------------------
    async def _dispatch(self, rows: list[tuple[str, str]]) -> None:
        # Runs of changes to one table, in commit order: each run is one batch of queries,
        # and no subscriber hears a later change before an earlier one.
        runs: list[tuple[tuple[str, str], list[tuple[str, dict[str, Any]]]]] = []
        pending: list[dict[str, Any]] = []
        for lsn, raw in rows:  # whole transactions, in commit order
            change = json.loads(raw)
            if change.get("action") == "C":
                for c in pending:
                    c["_commit"] = _lsn(lsn)
                pending = []
            elif change.get("action") in ("I", "U", "D"):
                pending.append(change)
                key = (change["schema"], change["table"])
                if not runs or runs[-1][0] != key:
                    runs.append((key, []))
                runs[-1][1].append((raw, change))
        for (schema, table), changes in runs:
            targets = [
                (j, [b for b in bs if b.schema in ("*", schema) and b.table in ("*", table)])
                for j, bs in list(self.subs.items())
                if self.live(j) and j.token.expires_in > 0
            ]
            targets = [(j, bs) for j, bs in targets if bs]
            if targets:
                await self._deliver(schema, table, changes, targets)

    async def _deliver(
        self,
        schema: str,
        table: str,
        changes: list[tuple[str, dict[str, Any]]],
        targets: list[tuple[Join, list[Binding]]],
    ) -> None:
        roles = {j.token.role for j, _ in targets}
        filter_sets = sorted({b.filters for _, bs in targets for b in bs}, key=repr)
        entity = sql.Identifier(schema, table)
        async with self.pool.connection() as conn:
            info = await table_info(conn, schema, table, roles)
            records = await typed_records(conn, info, entity, changes, filter_sets)
        fs_index = {fs: i for i, fs in enumerate(filter_sets)}
        # One RLS check per role and claims, over the whole batch.
        checks: dict[tuple[str, str], set[int] | None] = {}
        if info.rls and info.pk:
            wanted: dict[tuple[str, str], tuple[dict[str, Any], list[tuple[int, dict[str, Any]]]]] = {}
            for j, _ in targets:
                if not set(info.pk) <= info.selectable[j.token.role]:
                    continue
                key = (j.token.role, json.dumps(j.token.claims, sort_keys=True))
                if key not in wanted:
                    keyed = [
                        (i, r[0])
                        for i, r in enumerate(records)
                        if r[0] is not None and changes[i][1]["action"] != "D"
                    ]
                    wanted[key] = (j.token.claims, keyed)
            for key, (claims, keyed) in wanted.items():
                checks[key] = await visible(self.pool, info, claims, key[0], keyed, table) if keyed else set()
        for i, ((raw, change), (new, old, passes)) in enumerate(zip(changes, records, strict=True)):
            action = {"I": "INSERT", "U": "UPDATE", "D": "DELETE"}[change["action"]]
            stamp = commit_time(change.get("timestamp"))
            for j, bs in targets:
                if change.get("_commit", 0) <= self.since.get(j, 0):
                    continue
                matched = [b for b in bs if b.wants(action) and passes[fs_index[b.filters]]]
                if not matched:
                    continue
                role = j.token.role
                sel = info.selectable[role]
                base: dict[str, Any] = {"schema": schema, "table": table, "type": action}
                error: str | None = None
                if action != "DELETE" and not info.pk:
                    error = "Error 400: Bad Request, no primary key"
                elif not set(info.pk) <= sel:
                    if action == "DELETE":
                        continue  # a role that may not select the key hears of no delete
                    error = "Error 401: Unauthorized"
                elif info.rls and action != "DELETE":
                    seen = checks.get((role, json.dumps(j.token.claims, sort_keys=True)))
                    if seen is None:
                        error = "Error 500: Internal Server Error, RLS policy evaluation failed"
                    elif i not in seen:
                        continue
                for select in {b.select for b in matched}:
                    ids = sorted({b.id for b in matched if b.select == select})
                    if error is not None:
                        data = {**base, "columns": [], "commit_timestamp": None, "errors": [error]}
                        if action != "DELETE":
                            data["record"] = {}
                    else:
                        data = shape(info, base, stamp, len(raw), action, new, old, sel, select)
                    j.peer.push(Message(j.topic, "postgres_changes", {"ids": ids, "data": data}))


def _lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low or "0", 16)
