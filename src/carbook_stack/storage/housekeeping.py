"""Storage chores the supervisor runs while no app serves: the buckets of config.toml,
the seeded cars' images, and what uploads that never finished left behind."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from ..settings import StackSettings
from .access import as_platform
from .store import Store, object_metadata, write_object

__all__ = ["apply_buckets", "clean_storage", "seed_images"]


def apply_buckets(settings: StackSettings) -> None:
    """``[storage.buckets.*]`` of config.toml onto ``storage.buckets``, as the Supabase CLI
    does at every start: created when missing, their public flag and limits set."""
    if not settings.buckets:
        return
    with psycopg.connect(settings.db_url, autocommit=True) as conn, conn.transaction():
        for b in settings.buckets:
            conn.execute(
                """insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
                   values (%s, %s, %s, %s, %s)
                   on conflict (id) do update
                     set public = excluded.public, file_size_limit = excluded.file_size_limit,
                         allowed_mime_types = excluded.allowed_mime_types, updated_at = now()
                   where (storage.buckets.public, storage.buckets.file_size_limit,
                          storage.buckets.allowed_mime_types)
                         is distinct from (excluded.public, excluded.file_size_limit,
                                           excluded.allowed_mime_types)""",
                (b.name, b.name, b.public, b.file_size_limit, list(b.allowed_mime_types) or None),
            )


def seed_images(settings: StackSettings, sample: Path) -> None:
    """Give the seeded cars their images (seed.sql can insert rows, not files): ``sample``
    as the object of each seeded image path, written as an upload writes one."""
    if not sample.is_file():
        return
    # A thread of its own: start() may be called where an event loop already runs.
    with ThreadPoolExecutor(1) as worker:
        worker.submit(asyncio.run, _write_images(settings, sample.read_bytes())).result()


async def _write_images(settings: StackSettings, data: bytes) -> None:
    objects = Store(settings.storage_dir)
    meta = object_metadata(hashlib.md5(data).hexdigest(), len(data), "image/png", "max-age=3600")
    async with await psycopg.AsyncConnection.connect(settings.db_url, autocommit=True) as conn:
        cur = await conn.execute("select distinct image_path from public.cars where image_path like 'seed/%'")
        for (path,) in await cur.fetchall():
            temp = objects.temp()
            temp.write_bytes(data)
            try:
                # An object already there is kept, as seed data never overwrites.
                with contextlib.suppress(psycopg.errors.UniqueViolation):
                    await write_object(
                        as_platform(conn), objects, temp, bucket_id="car-images", name=path, metadata=meta
                    )
            finally:
                temp.unlink(missing_ok=True)


def clean_storage(settings: StackSettings) -> str | None:
    """Remove what uploads that never finished left in storage: temporary files, and
    version files no object row names (an app killed between writing the bytes and
    committing the row). Run only while no app serves, so nothing is in flight.
    Returns the line to log when something was removed."""
    objects = Store(settings.storage_dir)
    if not objects.objects.is_dir():
        return None
    with psycopg.connect(settings.db_url, autocommit=True) as conn:
        rows = conn.execute("select version from storage.objects where version is not null").fetchall()
    unfinished, orphaned = objects.sweep({str(v) for (v,) in rows})
    if not (unfinished or orphaned):
        return None
    return (
        f"storage: removed {unfinished} unfinished upload(s) and "
        f"{orphaned} file(s) no object names, left by a stopped app"
    )
