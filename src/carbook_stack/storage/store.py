"""Where object bytes live, and how a version's bytes and its row stay in step.

Bytes live in ``<state>/storage/objects/<version>``, one file per object version (a
UUID), so an object's name never becomes a file path: nothing can escape the folder.
A new version's file is in place before its row commits; an old version's file is
deleted only after the row naming its successor has committed, so a reader that finds
a row always finds bytes, at worst after reading the row again.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..gateway import Gateway
from .errors import not_found

__all__ = ["Store", "lock_names", "open_current", "store"]


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
        return self.objects / f".upload-{uuid.uuid4()}"

    def discard(self, *versions: str | None) -> None:
        for v in versions:
            if v:
                with contextlib.suppress(OSError, ValueError):
                    self.path(v).unlink()


def store(gw: Gateway) -> Store:
    return Store(gw.settings.storage_dir)


async def lock_names(conn: psycopg.AsyncConnection[Any], *objects: tuple[str, str]) -> None:
    """Serialise the writers of these object names until the transaction ends.

    Every write that can replace a name's version takes this first (in one global order,
    so two writers never wait on each other): each learns the version it really replaces
    and deletes that file. A row lock alone cannot do it for a name with no row yet.
    """
    for bucket_id, name in sorted(set(objects)):
        await conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{bucket_id}/{name}",))


async def open_current(
    gw: Gateway, conn: psycopg.AsyncConnection[Any], bucket_id: str, name: str, columns: str
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
            return row, open(store(gw).path(row["version"]), "rb")  # closed by the response
        except FileNotFoundError:
            continue
    raise not_found()
