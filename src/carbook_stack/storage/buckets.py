"""Buckets: list, create, read, update, delete and empty them, under the caller's role."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from carbook_sdk.config import parse_size

from ..service import AppState
from .access import as_caller, caller_of, json_body, owner_of
from .errors import StorageError, bucket_not_found, invalid_request
from .store import store

__all__ = ["bucket_detail", "create_bucket", "empty_bucket", "list_buckets"]


def _bucket_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "owner": str(row["owner"]) if row["owner"] else "",
        "public": row["public"],
        "type": "STANDARD",
        "file_size_limit": row["file_size_limit"],
        "allowed_mime_types": row["allowed_mime_types"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


#: Largest bucket size limit: what its bigint column holds.
MAX_SIZE_LIMIT = 2**63 - 1


def _size_limit(value: Any) -> int:
    """A bucket's ``file_size_limit``: bytes as a number, or a size such as ``"5MB"`` with
    ASCII digits, within what the column holds."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | str)
        or (isinstance(value, str) and not value.isascii())
    ):
        raise invalid_request("file_size_limit is not a size")
    try:
        size = parse_size(value)
    except Exception:
        raise invalid_request("file_size_limit is not a size") from None
    if not 0 <= size <= MAX_SIZE_LIMIT:
        raise invalid_request(f"file_size_limit must be between 0 and {MAX_SIZE_LIMIT} bytes")
    return size


def _bucket_options(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "public" in body:
        out["public"] = bool(body["public"])
    if body.get("file_size_limit") is not None:
        out["file_size_limit"] = _size_limit(body["file_size_limit"])
    if "allowed_mime_types" in body:
        mimes = body["allowed_mime_types"]
        if mimes is not None and (not isinstance(mimes, list) or not all(isinstance(m, str) for m in mimes)):
            raise invalid_request("allowed_mime_types must be a list")
        out["allowed_mime_types"] = mimes
    return out


async def list_buckets(request: Request, state: AppState) -> Response:
    caller = caller_of(request, state)
    async with as_caller(state, caller) as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("select * from storage.buckets order by name")
        rows = await cur.fetchall()
    return JSONResponse([_bucket_json(r) for r in rows])


async def create_bucket(request: Request, state: AppState) -> Response:
    caller = caller_of(request, state)
    body = await json_body(request)
    bucket_id = str(body.get("id") or body.get("name") or "")
    name = str(body.get("name") or bucket_id)
    if not bucket_id or "/" in bucket_id or len(bucket_id) > 100 or not bucket_id.isprintable():
        raise StorageError("400", "Invalid Input", "InvalidBucketName", "Bucket name invalid")
    opts = _bucket_options(body)
    try:
        async with as_caller(state, caller) as conn:
            await conn.execute(
                """insert into storage.buckets (id, name, owner, public, file_size_limit, allowed_mime_types)
                   values (%s, %s, %s, %s, %s, %s)""",
                (
                    bucket_id,
                    name,
                    owner_of(caller),
                    opts.get("public", False),
                    opts.get("file_size_limit"),
                    opts.get("allowed_mime_types"),
                ),
            )
    except psycopg.errors.UniqueViolation:
        raise StorageError("409", "Duplicate", "BucketAlreadyExists", "The resource already exists") from None
    return JSONResponse({"name": name})


async def bucket_detail(request: Request, state: AppState) -> Response:
    bucket_id = request.path_params["bucket"]
    caller = caller_of(request, state)
    if request.method == "GET":
        async with as_caller(state, caller) as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("select * from storage.buckets where id = %s", (bucket_id,))
            row = await cur.fetchone()
        if row is None:
            raise bucket_not_found()
        return JSONResponse(_bucket_json(row))
    if request.method == "PUT":
        opts = _bucket_options(await json_body(request))
        if not opts:
            raise invalid_request("nothing to update")
        sets = ", ".join(f"{k} = %s" for k in opts)
        async with as_caller(state, caller) as conn:
            cur = await conn.execute(
                f"update storage.buckets set {sets}, updated_at = now() where id = %s",
                (*opts.values(), bucket_id),
            )
            if cur.rowcount == 0:
                raise bucket_not_found()
        return JSONResponse({"message": "Successfully updated"})
    async with as_caller(state, caller) as conn:
        cur = await conn.execute("select 1 from storage.objects where bucket_id = %s limit 1", (bucket_id,))
        if await cur.fetchone():
            raise StorageError(
                "409",
                "ResourceNotEmpty",
                "ResourceNotEmpty",
                "The bucket you tried to delete is not empty",
            )
        cur = await conn.execute("delete from storage.buckets where id = %s", (bucket_id,))
        if cur.rowcount == 0:
            raise bucket_not_found()
    return JSONResponse({"message": "Successfully deleted"})


async def empty_bucket(request: Request, state: AppState) -> Response:
    """Delete every object of a bucket the caller sees, as the caller, or none.

    As Storage answers under RLS: a bucket the caller may not see is "not found"; when the
    policies keep the caller from deleting every object, nothing is deleted and the answer
    is 403, never "Successfully emptied" for a bucket still full."""
    bucket_id = request.path_params["bucket"]
    caller = caller_of(request, state)
    async with state.connection() as conn:
        cur = await conn.execute("select count(*) from storage.objects where bucket_id = %s", (bucket_id,))
        counted = await cur.fetchone()
    total = counted[0] if counted else 0
    async with as_caller(state, caller) as conn:
        cur = await conn.execute("select 1 from storage.buckets where id = %s", (bucket_id,))
        if await cur.fetchone() is None:
            raise bucket_not_found()
        cur = await conn.execute(
            "delete from storage.objects where bucket_id = %s returning version", (bucket_id,)
        )
        versions = [r[0] for r in await cur.fetchall()]
        if len(versions) < total:
            # Raised inside the transaction: the deletes it allowed are rolled back too.
            raise StorageError(
                "403",
                "Unauthorized",
                "AccessDenied",
                "Access denied: cannot delete every object of the bucket",
            )
    store(state).discard(*versions)
    return JSONResponse({"message": "Successfully emptied"})
