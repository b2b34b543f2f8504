"""Where object bytes live, and how a version's bytes and its row stay in step.

Bytes live in ``<state>/storage/objects/<version>``, one file per object version (a
UUID), so an object's name never becomes a file path: nothing can escape the folder.
A new version's file is in place before its row commits; an old version's file is
deleted only after the row naming its successor has committed, so a reader that finds
a row always finds bytes, at worst after reading the row again.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..service import AppState
from ..tokens import Caller
from .access import owner_of
from .errors import not_found

__all__ = ["Store", "lock_names", "object_metadata", "open_current", "store", "write_object"]


#: An upload streams into ``<objects>/.upload-<uuid>`` until its row commits.
_TEMP_PREFIX = ".upload-"


@dataclass
class Store:
    """Where object bytes live."""

    root: Path

    @property
    def objects(self) -> Path:
        return self.root / "objects"

    def path(self, version: str) -> Path:
        # version is a UUID we generated: never user text.
        return self.objects / str(uuid.UUID(version))

    def temp(self) -> Path:
        self.objects.mkdir(parents=True, exist_ok=True)
        return self.objects / f"{_TEMP_PREFIX}{uuid.uuid4()}"

    def sweep(self, versions: set[str]) -> tuple[int, int]:
        """Remove unfinished uploads' temporary files and version files not in
        ``versions`` (those no object row names). Only while nothing writes here.
        Returns (temporary files, version files) removed."""
        unfinished = orphaned = 0
        if not self.objects.is_dir():
            return 0, 0
        for file in self.objects.iterdir():
            if file.name.startswith(_TEMP_PREFIX):
                unfinished += 1
            elif file.name not in versions:
                orphaned += 1
            else:
                continue
            file.unlink(missing_ok=True)
        return unfinished, orphaned

    def discard(self, *versions: str | None) -> None:
        for v in versions:
            if v:
                with contextlib.suppress(OSError, ValueError):
                    self.path(v).unlink()


def store(state: AppState) -> Store:
    return Store(state.settings.storage_dir)


async def lock_names(conn: psycopg.AsyncConnection[Any], *objects: tuple[str, str]) -> None:
    """Serialise the writers of these object names until the transaction ends.

    Every write that can replace a name's version takes this first (in one global order,
    so two writers never wait on each other): each learns the version it really replaces
    and deletes that file. A row lock alone cannot do it for a name with no row yet.
    """
    for bucket_id, name in sorted(set(objects)):
        await conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{bucket_id}/{name}",))


def object_metadata(md5: str, size: int, mimetype: str, cache_control: str) -> dict[str, Any]:
    """A version's ``metadata`` column, as Storage writes it (``md5`` in hex)."""
    return {
        "eTag": f'"{md5}"',
        "size": size,
        "mimetype": mimetype,
        "cacheControl": cache_control,
        "lastModified": format_datetime(datetime.now(UTC), usegmt=True),
        "contentLength": size,
        "httpStatusCode": 200,
    }


async def write_object(
    transaction: AbstractAsyncContextManager[psycopg.AsyncConnection[Any]],
    objects: Store,
    source: Path,
    *,
    bucket_id: str,
    name: str,
    metadata: dict[str, Any],
    caller: Caller | None = None,
    upsert: bool = False,
    must_exist: bool = False,
) -> str:
    """Make ``source`` (a file in the store's folder, from ``Store.temp``) the object's new
    version, its row written in ``transaction``; the row's id.

    The version it replaces (``upsert``) is deleted once the new row has committed; if the
    row does not commit, the new bytes go and the old version stays.

    Raises:
        StorageError: ``must_exist`` and there is no such object yet.
        psycopg.Error: the database refused the row (RLS, a name taken, no such bucket).
    """
    sql = """insert into storage.objects (bucket_id, name, owner, owner_id, metadata, version)
             values (%s, %s, %s, %s, %s, %s)"""
    if upsert:
        sql += """ on conflict (bucket_id, name) do update
                   set metadata = excluded.metadata, version = excluded.version,
                       owner = excluded.owner, owner_id = excluded.owner_id,
                       updated_at = now(), last_accessed_at = now()"""
    version = str(uuid.uuid4())
    final = objects.path(version)
    # Put the bytes in place before the row commits, take them away if it does not.
    os.replace(source, final)
    try:
        async with transaction as conn:
            await lock_names(conn, (bucket_id, name))
            old = await conn.execute(
                "select version from storage.objects where bucket_id = %s and name = %s for update",
                (bucket_id, name),
            )
            previous = await old.fetchone()
            if must_exist and previous is None:
                raise not_found()
            cur = await conn.execute(
                sql + " returning id",
                (
                    bucket_id,
                    name,
                    owner_of(caller) if caller else None,
                    caller.user_id if caller else None,
                    Jsonb(metadata),
                    version,
                ),
            )
            row = await cur.fetchone()
    except BaseException:
        final.unlink(missing_ok=True)
        raise
    assert row is not None
    if previous and previous[0] and upsert:
        objects.discard(previous[0])
    return str(row[0])


async def open_current(
    state: AppState, conn: psycopg.AsyncConnection[Any], bucket_id: str, name: str, columns: str
) -> tuple[dict[str, Any], Any]:
    """The object's row (as ``conn`` sees it) and its bytes, opened.

    A writer deletes an old version's file only after the row naming its successor has
    committed, so a file missing at open time means "read the row again", never "lost".
    """
    for _ in range(10):
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"select {columns} from storage.objects where bucket_id = %s and name = %s",
                (bucket_id, name),
            )
            row = await cur.fetchone()
        if row is None:
            raise not_found()
        try:
            return row, open(store(state).path(row["version"]), "rb")  # closed by the response
        except FileNotFoundError:
            continue
    raise not_found()
