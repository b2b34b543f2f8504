"""``list-v2``: the objects (and, with a delimiter, the folders) under a prefix, a page at
a time, as Storage's ``listObjectsV2`` answers and storage3's ``list_v2`` reads it.

The prefix is a plain string prefix of the names, not a folder. Names sort byte-wise
(``COLLATE "C"``); ``created_at``/``updated_at`` sort by the time, then the name; a
folder's times are the earliest ``created_at`` below it, as Storage's ``search_v2`` has
them. The cursor is opaque: the last entry's sort key, the column and the order, so
the next page starts right after it whatever was added or removed meanwhile.

The rows under the prefix are read (as the caller, so RLS decides) and paged here: a
local stand-in's buckets are small, and one code path for every sort keeps pages exact.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..service import AppState
from .access import as_caller, caller_of, json_body
from .errors import StorageError, invalid_request

__all__ = ["list_objects_v2"]

MAX_KEYS = 1000
_COLUMNS = ("name", "updated_at", "created_at")
_ORDERS = ("asc", "desc")


@dataclass
class _Entry:
    name: str
    row: dict[str, Any] | None  # None: a folder
    created_at: datetime
    updated_at: datetime

    def key(self, column: str) -> tuple[str, str]:
        """The sort key: the name, or the time (ISO, fixed width, so it sorts as text) and the name."""
        if column == "name":
            return ("", self.name)
        return (getattr(self, column).astimezone(UTC).isoformat(timespec="microseconds"), self.name)


def _bad_cursor() -> StorageError:
    return StorageError("400", "InvalidParameter", "InvalidParameter", "Invalid Parameter continuation token")


def _encode_cursor(column: str, order: str, key: tuple[str, str]) -> str:
    raw = json.dumps({"c": column, "o": order, "k": list(key)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        column, order, (first, second) = data["c"], data["o"], data["k"]
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise _bad_cursor() from None
    if (
        column not in _COLUMNS
        or order not in _ORDERS
        or not isinstance(first, str)
        or not isinstance(second, str)
    ):
        raise _bad_cursor()
    return column, order, (first, second)


def _options(body: dict[str, Any]) -> tuple[str, bool, int, str, str, tuple[str, str] | None]:
    """(prefix, with_delimiter, limit, column, order, after) from the body, checked as
    Storage's JSON schema checks it."""
    prefix = body.get("prefix") or ""
    if not isinstance(prefix, str):
        raise invalid_request("body/prefix must be string")
    delimiter = body.get("with_delimiter", False)
    if not isinstance(delimiter, bool):
        raise invalid_request("body/with_delimiter must be boolean")
    limit = body.get("limit", MAX_KEYS)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise invalid_request("body/limit must be an integer >= 1")
    sort = body.get("sortBy") or {}
    if not isinstance(sort, dict):
        raise invalid_request("body/sortBy must be object")
    column, order = sort.get("column", "name"), sort.get("order", "asc")
    if column not in _COLUMNS:
        raise invalid_request("body/sortBy/column must be equal to one of the allowed values")
    if order not in _ORDERS:
        raise invalid_request("body/sortBy/order must be equal to one of the allowed values")
    cursor = body.get("cursor")
    after = None
    if cursor is not None and cursor != "":
        if not isinstance(cursor, str):
            raise invalid_request("body/cursor must be string")
        column, order, after = _decode_cursor(cursor)  # a cursor keeps the sort it was made with
    return prefix, delimiter, min(limit, MAX_KEYS), column, order, after


def _entries(rows: list[dict[str, Any]], prefix: str, delimiter: bool) -> list[_Entry]:
    entries: list[_Entry] = []
    folders: dict[str, _Entry] = {}
    for r in rows:
        rest = r["name"][len(prefix) :]
        cut = rest.find("/") if delimiter else -1
        if cut < 0:
            entries.append(_Entry(r["name"], r, r["created_at"], r["updated_at"]))
            continue
        folder = prefix + rest[: cut + 1]
        seen = folders.get(folder)
        if seen is None:
            folders[folder] = _Entry(folder, None, r["created_at"], r["created_at"])
        elif r["created_at"] < seen.created_at:
            seen.created_at = seen.updated_at = r["created_at"]
    return entries + list(folders.values())


def _object_json(entry: _Entry, level: int, delimiter: bool) -> dict[str, Any]:
    r = entry.row
    assert r is not None
    item = {
        "id": str(r["id"]),
        "name": r["name"],
        "metadata": r["metadata"],
        "updated_at": r["updated_at"].isoformat(),
        "created_at": r["created_at"].isoformat(),
        "last_accessed_at": r["last_accessed_at"].isoformat(),
    }
    if delimiter:
        item["key"] = r["name"].split("/")[level - 1]
    return item


def _folder_json(entry: _Entry, level: int) -> dict[str, Any]:
    return {
        "id": None,
        "name": entry.name,
        "key": entry.name.split("/")[level - 1],
        "created_at": entry.created_at.isoformat(),
        "updated_at": entry.updated_at.isoformat(),
    }


async def list_objects_v2(request: Request, state: AppState) -> Response:
    bucket_id = request.path_params["bucket"]
    caller = caller_of(request, state)
    prefix, delimiter, limit, column, order, after = _options(await json_body(request))
    async with as_caller(state, caller) as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """select id, name, metadata, updated_at, created_at, last_accessed_at
                 from storage.objects where bucket_id = %s and starts_with(name, %s)""",
            (bucket_id, prefix),
        )
        rows = await cur.fetchall()
    desc = order == "desc"
    entries = sorted(_entries(rows, prefix, delimiter), key=lambda e: e.key(column), reverse=desc)
    if after is not None:
        entries = [e for e in entries if (e.key(column) < after if desc else e.key(column) > after)]
    page, has_next = entries[:limit], len(entries) > limit
    # Storage's "levels": a key is the name's segment right after the prefix's last '/'
    # (every name here starts with the prefix, so it has that many segments).
    level = prefix.count("/") + 1
    reply: dict[str, Any] = {
        "hasNext": has_next,
        "folders": [_folder_json(e, level) for e in page if e.row is None],
        "objects": [_object_json(e, level, delimiter) for e in page if e.row is not None],
    }
    if has_next:
        reply["nextCursor"] = _encode_cursor(column, order, page[-1].key(column))
        reply["nextCursorKey"] = page[-1].name
    return JSONResponse(reply)
