"""Who asks and what they address: the caller's token, a transaction under the caller's
role, the bucket's limits, the object's name and the request's JSON body.

Every statement on ``storage.buckets``/``storage.objects`` made for a caller runs in
``as_caller``, so the storage RLS policies decide, as on hosted Supabase.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.rows import dict_row
from starlette.requests import Request

from ..service import MAX_JSON_BODY, AppState, InvalidInput, bearer_of, load_json, read_limited
from ..tokens import Caller, TokenError, verify_token
from .errors import StorageError, bucket_not_found, invalid_request, unauthorized

__all__ = [
    "MAX_NAME_BYTES",
    "as_caller",
    "as_platform",
    "become",
    "bucket_row",
    "caller_of",
    "check_header_value",
    "check_name",
    "json_body",
    "owner_of",
]

MAX_NAME_BYTES = 1024


def check_name(name: str) -> str:
    """An object name Storage accepts: no empty, '.' or '..' segments, no control characters."""
    if (
        not name
        or len(name.encode()) > MAX_NAME_BYTES
        or name.startswith("/")
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
        or any(seg in ("", ".", "..") for seg in name.split("/"))
    ):
        shown = name if len(name) <= 200 else name[:200] + "…"
        raise StorageError("400", "InvalidKey", "InvalidKey", f"Invalid key: {shown!r}")
    return name


def check_header_value(field: str, value: str) -> str:
    """A value that is sent back as a response header (``cacheControl``, ``contentType``):
    refused at upload when a header cannot carry it (CR, LF, other control characters,
    anything beyond Latin-1), so no later download of the object fails on it."""
    if any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 or ord(ch) > 255 for ch in value):
        raise invalid_request(f"{field} contains characters an HTTP header cannot carry")
    return value


def caller_of(request: Request, state: AppState) -> Caller:
    token = bearer_of(request)
    try:
        return verify_token(token, state.keys)
    except TokenError as exc:
        raise unauthorized(str(exc)) from None


def owner_of(caller: Caller) -> str | None:
    """The ``owner`` column's value: the caller's user id when it is a UUID (API keys have none)."""
    try:
        uuid.UUID(str(caller.user_id))
    except ValueError:
        return None
    return caller.user_id


async def become(conn: psycopg.AsyncConnection[Any], caller: Caller) -> None:
    """Make the rest of the transaction on ``conn`` run as the caller's role and claims."""
    await conn.execute(
        """select set_config('role', %s, true),
                  set_config('request.jwt.claims', %s, true),
                  set_config('request.jwt.claim.sub', %s, true),
                  set_config('request.jwt.claim.role', %s, true)""",
        (caller.role, json.dumps(caller.claims), caller.user_id or "", caller.role),
    )


@contextlib.asynccontextmanager
async def as_caller(state: AppState, caller: Caller) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A transaction running as the caller's role with its JWT claims, as Storage does."""
    async with state.connection() as conn, conn.transaction():
        await become(conn, caller)
        yield conn


@contextlib.asynccontextmanager
async def as_platform(conn: psycopg.AsyncConnection[Any]) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A transaction on ``conn`` as the role it connected with, no JWT: the platform's own
    writes (the supervisor's seed images), which RLS does not judge."""
    async with conn.transaction():
        yield conn


async def bucket_row(state: AppState, bucket_id: str) -> dict[str, Any]:
    """The bucket's limits, read as the platform (not subject to RLS)."""
    async with state.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("select * from storage.buckets where id = %s", (bucket_id,))
        row = await cur.fetchone()
    if row is None:
        raise bucket_not_found()
    return row


async def public_bucket(state: AppState, bucket_id: str) -> dict[str, Any]:
    """The bucket, if it is public: what a public URL (or its info) may read without a key
    or token. A private bucket is "not found" there, as on hosted Storage."""
    bucket = await bucket_row(state, bucket_id)
    if not bucket["public"]:
        raise bucket_not_found()
    return bucket


async def json_body(request: Request) -> dict[str, Any]:
    raw = await read_limited(request, MAX_JSON_BODY)
    if raw is None:
        raise StorageError("413", "Payload too large", "EntityTooLarge", "Request body too large")
    try:
        data = load_json(raw or b"{}")
    except InvalidInput as exc:
        raise invalid_request(f"Body is not valid: {exc.message}") from None
    if not isinstance(data, dict):
        raise invalid_request("Body must be a JSON object")
    return data
