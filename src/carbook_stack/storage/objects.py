"""Objects by name: their info, listing a folder, deleting, moving and copying them."""

from __future__ import annotations

import shutil
from typing import Any

import psycopg
from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..service import AppState, ascii_int
from ..tokens import Caller
from .access import as_caller, bucket_row, caller_of, check_name, json_body, public_bucket
from .errors import StorageError, invalid_request, not_found
from .store import lock_names, open_current, store, write_object

__all__ = [
    "copy_object",
    "delete_object",
    "list_objects",
    "move_object",
    "object_info",
    "public_object_info",
    "remove_objects",
]


_INFO_COLUMNS = "id, name, version, bucket_id, metadata, updated_at, created_at"


def _info_json(row: dict[str, Any]) -> dict[str, Any]:
    """An object's info, in the shape of Storage's ``InfoRenderer``."""
    meta = row["metadata"] or {}
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "version": row["version"],
        "bucket_id": row["bucket_id"],
        "size": meta.get("size"),
        "content_type": meta.get("mimetype"),
        "cache_control": meta.get("cacheControl"),
        "etag": meta.get("eTag"),
        "metadata": meta.get("userMetadata"),
        "last_modified": row["updated_at"].isoformat(),
        "created_at": row["created_at"].isoformat(),
    }


async def _info(conn: psycopg.AsyncConnection[Any], bucket_id: str, name: str) -> Response:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"select {_INFO_COLUMNS} from storage.objects where bucket_id = %s and name = %s",
            (bucket_id, name),
        )
        row = await cur.fetchone()
    if row is None:
        raise not_found()
    return JSONResponse(_info_json(row))


async def object_info(request: Request, state: AppState) -> Response:
    """``/object/info/{bucket}/…`` and ``/object/info/authenticated/{bucket}/…``: with a
    valid token; an object of a public bucket is described to anyone who has one (as
    Storage reads it as itself), one of a private bucket only if the caller may see it."""
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    caller = caller_of(request, state)
    bucket = await bucket_row(state, bucket_id)
    if bucket["public"]:
        async with state.connection() as conn:
            return await _info(conn, bucket_id, name)
    async with as_caller(state, caller) as conn:
        return await _info(conn, bucket_id, name)


async def public_object_info(request: Request, state: AppState) -> Response:
    """``/object/info/public/{bucket}/…``: no key or token, public buckets only (a private
    bucket is "not found", as its public URLs are)."""
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    await public_bucket(state, bucket_id)
    async with state.connection() as conn:
        return await _info(conn, bucket_id, name)


async def delete_object(request: Request, state: AppState) -> Response:
    """One object, as the caller: 404 if there is no such object, 403 if the storage
    policies do not let the caller delete it (as Storage answers)."""
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    caller = caller_of(request, state)
    async with state.connection() as conn:
        cur = await conn.execute(
            "select 1 from storage.objects where bucket_id = %s and name = %s", (bucket_id, name)
        )
        if await cur.fetchone() is None:
            raise not_found()
    async with as_caller(state, caller) as conn:
        await lock_names(conn, (bucket_id, name))
        cur = await conn.execute(
            "delete from storage.objects where bucket_id = %s and name = %s returning version",
            (bucket_id, name),
        )
        deleted = await cur.fetchone()
    if deleted is None:
        raise StorageError("403", "Unauthorized", "AccessDenied", "Access denied")
    store(state).discard(deleted[0])
    return JSONResponse({"message": "Successfully deleted"})


def _row_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "bucket_id": row["bucket_id"],
        "owner": str(row["owner"]) if row["owner"] else "",
        "owner_id": row["owner_id"] or "",
        "version": row["version"],
        "id": str(row["id"]),
        "updated_at": row["updated_at"].isoformat(),
        "created_at": row["created_at"].isoformat(),
        "last_accessed_at": row["last_accessed_at"].isoformat(),
        "metadata": row["metadata"],
    }


async def remove_objects(request: Request, state: AppState) -> Response:
    bucket_id = request.path_params["bucket"]
    caller = caller_of(request, state)
    body = await json_body(request)
    prefixes = body.get("prefixes")
    if (
        not isinstance(prefixes, list)
        or not all(isinstance(p, str) for p in prefixes)
        or len(prefixes) > 1000
    ):
        raise invalid_request("prefixes must be a list of up to 1000 names")
    async with as_caller(state, caller) as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "delete from storage.objects where bucket_id = %s and name = any(%s) returning *",
            (bucket_id, prefixes),
        )
        rows = await cur.fetchall()
    store(state).discard(*(r["version"] for r in rows))
    return JSONResponse([_row_json(r) for r in rows])


def _whole(value: Any, default: int, name: str) -> int:
    if value is None:
        return default
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        number = ascii_int(value)
    if number is None or not 0 <= number <= MAX_OFFSET:
        raise invalid_request(f"{name} must be a non-negative integer")
    return number


#: Largest ``limit``/``offset`` of a listing (PostgreSQL's bigint, as Storage's column).
MAX_OFFSET = 2**63 - 1


_SORT_COLUMNS = {"name", "updated_at", "created_at", "last_accessed_at"}


async def list_objects(request: Request, state: AppState) -> Response:
    bucket_id = request.path_params["bucket"]
    caller = caller_of(request, state)
    body = await json_body(request)
    prefix = str(body.get("prefix") or "").strip("/")
    limit = min(_whole(body.get("limit"), 100, "limit"), 1500)
    offset = _whole(body.get("offset"), 0, "offset")
    search = str(body.get("search") or "").lower()
    sort = body.get("sortBy") or {}
    if not isinstance(sort, dict):
        raise invalid_request("sortBy must be an object")
    column = (
        sort["column"] if isinstance(sort.get("column"), str) and sort["column"] in _SORT_COLUMNS else "name"
    )
    reverse = str(sort.get("order", "asc")).lower() == "desc"
    base = f"{prefix}/" if prefix else ""
    async with as_caller(state, caller) as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select * from storage.objects where bucket_id = %s and starts_with(name, %s)", (bucket_id, base)
        )
        rows = await cur.fetchall()
    folders: dict[str, dict[str, Any]] = {}
    files: list[dict[str, Any]] = []
    for r in rows:
        rest = r["name"][len(base) :]
        if search and search not in rest.lower():
            continue
        if "/" in rest:
            top = rest.split("/", 1)[0]
            folders.setdefault(
                top,
                {
                    "name": top,
                    "id": None,
                    "updated_at": None,
                    "created_at": None,
                    "last_accessed_at": None,
                    "metadata": None,
                },
            )
        else:
            item = _row_json(r)
            item["name"] = rest
            files.append(item)
    items = sorted(folders.values(), key=lambda x: x["name"]) + sorted(
        files, key=lambda x: x.get(column) or "", reverse=reverse
    )
    return JSONResponse(items[offset : offset + limit])


async def _transfer(request: Request, state: AppState) -> tuple[Caller, str, str, str, str]:
    """(caller, bucket, source, destination bucket, destination) of a move or copy."""
    caller = caller_of(request, state)
    body = await json_body(request)
    bucket_id = str(body.get("bucketId") or "")
    source = check_name(str(body.get("sourceKey") or ""))
    dest = check_name(str(body.get("destinationKey") or ""))
    dest_bucket = str(body.get("destinationBucket") or bucket_id)
    await bucket_row(state, dest_bucket)
    return caller, bucket_id, source, dest_bucket, dest


async def move_object(request: Request, state: AppState) -> Response:
    caller, bucket_id, source, dest_bucket, dest = await _transfer(request, state)
    async with as_caller(state, caller) as conn:
        await lock_names(conn, (bucket_id, source), (dest_bucket, dest))
        cur = await conn.execute(
            """update storage.objects set bucket_id = %s, name = %s, updated_at = now()
                where bucket_id = %s and name = %s""",
            (dest_bucket, dest, bucket_id, source),
        )
        if cur.rowcount == 0:
            raise not_found()
    return JSONResponse({"message": "Successfully moved"})


async def copy_object(request: Request, state: AppState) -> Response:
    caller, bucket_id, source, dest_bucket, dest = await _transfer(request, state)
    objects = store(state)
    temp = objects.temp()
    try:
        async with as_caller(state, caller) as conn:
            src, file = await open_current(state, conn, bucket_id, source, "*")
        with file, open(temp, "wb") as out:
            shutil.copyfileobj(file, out)
        row_id = await write_object(
            as_caller(state, caller),
            objects,
            temp,
            bucket_id=dest_bucket,
            name=dest,
            metadata=src["metadata"],
            caller=caller,
        )
    finally:
        temp.unlink(missing_ok=True)
    return JSONResponse({"Id": row_id, "Key": f"{dest_bucket}/{dest}"})
