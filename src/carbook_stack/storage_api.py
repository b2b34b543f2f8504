"""``/storage/v1``: buckets and objects as Supabase Storage serves them.

Every statement on ``storage.buckets``/``storage.objects`` runs under the caller's JWT
role with ``request.jwt.claims`` set, so the storage RLS policies decide, as on hosted
Supabase. Errors have Storage's shape (HTTP 400 with the real code as a string in
``statusCode``), except bad or missing tokens, which are refused with HTTP 401.

Bytes live in ``<state>/storage/objects/<version>``, one file per object version (a
UUID), so an object's name never becomes a file path: nothing can escape the folder.
Uploads stream to a temporary file in the same folder, are checked against the
bucket's size and type limits as they arrive, and become visible only when their row
commits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import jwt
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from carbook_sdk.config import parse_size
from carbook_sdk.media import detect_image_type

from .gateway import MAX_JSON_BODY, Gateway, ServiceError, _read_limited, bearer_of, endpoint
from .tokens import Caller, TokenError, verify_token

#: Room for multipart boundaries and small fields around the file part.
MULTIPART_OVERHEAD = 64 * 1024
MAX_NAME_BYTES = 1024
#: Declared types whose first bytes are checked against what they claim.
SNIFFED_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
#: Form fields besides the file (cacheControl, contentType, metadata, …): a few, each small.
MAX_FORM_FIELDS = 16


class StorageError(ServiceError):
    def __init__(self, status: str, error: str, code: str, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.status, self.error, self.code, self.message, self.http_status = (
            status,
            error,
            code,
            message,
            http_status,
        )

    def response(self, request: Request | None = None) -> JSONResponse:
        return JSONResponse(
            {"statusCode": self.status, "error": self.error, "code": self.code, "message": self.message},
            status_code=self.http_status,
        )


def not_found() -> StorageError:
    return StorageError("404", "not_found", "NoSuchKey", "Object not found")


def bucket_not_found() -> StorageError:
    return StorageError("404", "Bucket not found", "NoSuchBucket", "Bucket not found")


def too_large() -> StorageError:
    return StorageError(
        "413", "Payload too large", "EntityTooLarge", "The object exceeded the maximum allowed size"
    )


def unauthorized(message: str) -> StorageError:
    return StorageError("401", "Unauthorized", "InvalidJWT", message, http_status=401)


def _from_db(exc: psycopg.Error) -> StorageError:
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return StorageError(
            "403", "Unauthorized", "AccessDenied", "new row violates row-level security policy"
        )
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return StorageError("409", "Duplicate", "KeyAlreadyExists", "The resource already exists")
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        return bucket_not_found()
    return StorageError("500", "internal", "InternalError", "Internal Server Error", http_status=500)


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


def caller_of(request: Request, gw: Gateway) -> Caller:
    token = bearer_of(request)
    try:
        return verify_token(token, gw.settings.jwt_secret)
    except TokenError as exc:
        raise unauthorized(str(exc)) from None


@contextlib.asynccontextmanager
async def as_caller(gw: Gateway, caller: Caller) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A transaction running as the caller's role with its JWT claims, as Storage does."""
    async with gw.pool.connection() as conn, conn.transaction():
        await conn.execute(
            """select set_config('role', %s, true),
                      set_config('request.jwt.claims', %s, true),
                      set_config('request.jwt.claim.sub', %s, true),
                      set_config('request.jwt.claim.role', %s, true)""",
            (caller.role, json.dumps(caller.claims), caller.user_id or "", caller.role),
        )
        yield conn


async def _lock_names(conn: psycopg.AsyncConnection[Any], *objects: tuple[str, str]) -> None:
    """Serialise the writers of these object names until the transaction ends.

    Every write that can replace a name's version takes this first (in one global order,
    so two writers never wait on each other): each learns the version it really replaces
    and deletes that file. A row lock alone cannot do it for a name with no row yet.
    """
    for bucket_id, name in sorted(set(objects)):
        await conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{bucket_id}/{name}",))


async def _bucket(gw: Gateway, bucket_id: str) -> dict[str, Any]:
    """The bucket's limits, read as the platform (not subject to RLS)."""
    async with gw.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("select * from storage.buckets where id = %s", (bucket_id,))
        row = await cur.fetchone()
    if row is None:
        raise bucket_not_found()
    return row


def _base_type(mime: str) -> str:
    """``image/png`` of ``Image/PNG; charset=x``."""
    return mime.split(";")[0].strip().lower()


def _mime_allowed(mime: str, allowed: list[str] | None) -> bool:
    if not allowed:
        return True
    base = _base_type(mime)
    for pattern in allowed:
        p = pattern.lower()
        if p == base or (p.endswith("/*") and base.startswith(p[:-1])):
            return True
    return False


# Upload ---------------------------------------------------------------------------------
@dataclass
class Upload:
    """An upload streamed to a temporary file."""

    temp: Path
    limit: int
    size: int = 0
    md5: Any = field(default_factory=hashlib.md5)
    mimetype: str = "application/octet-stream"
    cache_control: str = "no-cache"
    user_metadata: dict[str, Any] | None = None
    head: bytes = b""
    _file: Any = None

    def open(self) -> None:
        self._file = self.temp.open("wb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise too_large()
        self.md5.update(data)
        if len(self.head) < 16:
            self.head += data[: 16 - len(self.head)]
        self._file.write(data)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def metadata(self) -> dict[str, Any]:
        return {
            "eTag": f'"{self.md5.hexdigest()}"',
            "size": self.size,
            "mimetype": self.mimetype,
            "cacheControl": self.cache_control,
            "lastModified": format_datetime(datetime.now(UTC), usegmt=True),
            "contentLength": self.size,
            "httpStatusCode": 200,
        }


class _Multipart:
    """Feeds a multipart body to python-multipart, the ``file`` part straight to disk."""

    def __init__(self, upload: Upload, boundary: bytes) -> None:
        self.upload = upload
        self.fields: dict[str, bytearray] = {}
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._part: str | None = None
        self._is_file = False
        self.saw_file = False
        self.parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._begin,
                "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
                "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done,
                "on_part_data": self._data,
            },
        )

    def _begin(self) -> None:
        self._headers = {}
        self._part = None
        self._is_file = False

    def _header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode("latin-1")
        self._field.clear()
        self._value.clear()

    def _headers_done(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", ""))
        self._part = params.get(b"name", b"").decode("latin-1")
        self._is_file = self._part == "file" or b"filename" in params
        if self._is_file:
            if self.saw_file:
                raise StorageError("400", "InvalidRequest", "InvalidRequest", "only one file per upload")
            self.saw_file = True
            ctype = self._headers.get("content-type")
            if ctype:
                self.upload.mimetype = ctype
        else:
            if len(self.fields) >= MAX_FORM_FIELDS:
                raise StorageError("400", "InvalidRequest", "InvalidRequest", "too many form fields")
            self.fields[self._part] = bytearray()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.upload.write(data[start:end])
        elif self._part is not None:
            buf = self.fields[self._part]
            if len(buf) + (end - start) > 64 * 1024:
                raise StorageError("400", "InvalidRequest", "InvalidRequest", "form field too large")
            buf.extend(data[start:end])


async def _receive_upload(request: Request, upload: Upload) -> None:
    """Stream the request body into ``upload``; never holds the whole body in memory."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    length = request.headers.get("content-length")
    multipart = ctype == b"multipart/form-data"
    allowance = upload.limit + (MULTIPART_OVERHEAD if multipart else 0)
    if length and length.isdigit() and int(length) > allowance:
        raise too_large()
    upload.open()
    try:
        if multipart:
            boundary = params.get(b"boundary")
            if not boundary:
                raise StorageError("400", "InvalidRequest", "InvalidRequest", "multipart boundary missing")
            parts = _Multipart(upload, boundary)
            async for chunk in request.stream():
                parts.parser.write(chunk)
            parts.parser.finalize()
            if not parts.saw_file:
                raise StorageError("400", "InvalidRequest", "InvalidRequest", "No file in the upload")
            fields = {k: bytes(v).decode("utf-8", "replace") for k, v in parts.fields.items()}
            if fields.get("contentType"):
                upload.mimetype = fields["contentType"]
            if fields.get("cacheControl"):
                upload.cache_control = f"max-age={fields['cacheControl']}"
            if fields.get("metadata"):
                try:
                    upload.user_metadata = json.loads(fields["metadata"])
                except ValueError:
                    raise StorageError(
                        "400", "InvalidRequest", "InvalidRequest", "metadata is not JSON"
                    ) from None
        else:
            upload.mimetype = request.headers.get("content-type") or upload.mimetype
            if request.headers.get("cache-control"):
                upload.cache_control = request.headers["cache-control"]
            async for chunk in request.stream():
                upload.write(chunk)
    finally:
        upload.close()


async def upload_object(request: Request, gw: Gateway) -> Response:
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    caller = caller_of(request, gw)
    bucket = await _bucket(gw, bucket_id)
    upsert = request.method == "PUT" or request.headers.get("x-upsert", "").lower() == "true"
    limit = min(
        gw.settings.storage_file_size_limit, bucket["file_size_limit"] or gw.settings.storage_file_size_limit
    )
    objects = store(gw)
    upload = Upload(temp=objects.temp(), limit=limit)
    version = str(uuid.uuid4())
    final = objects.path(version)
    try:
        try:
            await _receive_upload(request, upload)
        except ClientDisconnect:
            raise StorageError("400", "InvalidRequest", "InvalidRequest", "upload interrupted") from None
        if not _mime_allowed(upload.mimetype, bucket["allowed_mime_types"]):
            mime = upload.mimetype.split(";")[0]
            raise StorageError(
                "415", "invalid_mime_type", "InvalidMimeType", f"mime type {mime} is not supported"
            )
        declared = _base_type(upload.mimetype)
        if declared in SNIFFED_TYPES and (detect_image_type(upload.head) or ("",))[0] != declared:
            # Stricter than hosted Storage, which trusts the declared type: an image bucket
            # here never holds bytes that are not the image they claim to be.
            raise StorageError(
                "415", "invalid_mime_type", "InvalidMimeType", f"the content is not {declared}"
            )
        # Put the bytes in place before the row commits, take them away if it does not.
        os.replace(upload.temp, final)
        try:
            async with as_caller(gw, caller) as conn:
                sql = """insert into storage.objects (bucket_id, name, owner, owner_id, metadata, version)
                         values (%s, %s, %s, %s, %s, %s)"""
                if upsert:
                    sql += """ on conflict (bucket_id, name) do update
                               set metadata = excluded.metadata, version = excluded.version,
                                   owner = excluded.owner, owner_id = excluded.owner_id,
                                   updated_at = now(), last_accessed_at = now()"""
                await _lock_names(conn, (bucket_id, name))
                old = await conn.execute(
                    "select version from storage.objects where bucket_id = %s and name = %s for update",
                    (bucket_id, name),
                )
                previous = await old.fetchone()
                if request.method == "PUT" and previous is None:
                    raise not_found()  # PUT updates an object; it does not create one
                cur = await conn.execute(
                    sql + " returning id",
                    (
                        bucket_id,
                        name,
                        caller.user_id if _is_uuid(caller.user_id) else None,
                        caller.user_id,
                        Jsonb(
                            {
                                **upload.metadata(),
                                **({"userMetadata": upload.user_metadata} if upload.user_metadata else {}),
                            }
                        ),
                        version,
                    ),
                )
                row = await cur.fetchone()
        except psycopg.Error as exc:
            final.unlink(missing_ok=True)
            raise _from_db(exc) from None
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        assert row is not None
        if previous and previous[0] and upsert:
            objects.discard(previous[0])
        return JSONResponse({"Id": str(row[0]), "Key": f"{bucket_id}/{name}"})
    finally:
        upload.close()
        upload.temp.unlink(missing_ok=True)


def _is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


# Download -------------------------------------------------------------------------------
class OpenFileResponse(Response):
    """Bytes from a file that is already open, so a newer version replacing (and deleting)
    it mid-download cannot break the reply: the open handle keeps the bytes readable.

    Answers HEAD, and a single ``Range: bytes=…`` with 206 (416 when unsatisfiable); other
    range forms get the whole file, which RFC 9110 allows.
    """

    chunk_size = 64 * 1024

    def __init__(self, file: Any, size: int, media_type: str, headers: dict[str, str]) -> None:
        super().__init__(status_code=200, headers=headers, media_type=media_type)
        self.file = file
        self.size = size
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]

    def _range(self, header: str | None) -> tuple[int, int] | None:
        """(first, last) byte of a single satisfiable range; None for the whole file."""
        if not header or not header.startswith("bytes=") or "," in header:
            return None
        first, _, last = header[6:].strip().partition("-")
        try:
            if first == "":
                start, end = max(self.size - int(last), 0), self.size - 1
            else:
                start, end = int(first), (int(last) if last else self.size - 1)
        except ValueError:
            return None
        if start < 0 or (start > end and last):
            return None
        if start >= self.size:
            raise _Unsatisfiable
        return start, min(end, self.size - 1)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            request_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                span = self._range(request_headers.get("range"))
            except _Unsatisfiable:
                await Response(status_code=416, headers={"Content-Range": f"bytes */{self.size}"})(
                    scope, receive, send
                )
                return
            start, end = span if span else (0, self.size - 1)
            length = end - start + 1 if self.size else 0
            headers = [*self.raw_headers, (b"content-length", str(length).encode())]
            headers.append((b"accept-ranges", b"bytes"))
            if span:
                headers.append((b"content-range", f"bytes {start}-{end}/{self.size}".encode()))
            await send({"type": "http.response.start", "status": 206 if span else 200, "headers": headers})
            if scope["method"].upper() == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            self.file.seek(start)
            left = length
            while left > 0:
                chunk = await anyio.to_thread.run_sync(self.file.read, min(self.chunk_size, left))
                if not chunk:
                    break
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
            if length == 0 or left > 0:
                await send({"type": "http.response.body", "body": b""})
        finally:
            self.file.close()


class _Unsatisfiable(Exception):
    pass


def _file_response(row: dict[str, Any], file: Any, request: Request) -> Response:
    meta = row["metadata"] or {}
    headers = {
        "Cache-Control": meta.get("cacheControl", "no-cache"),
        "ETag": meta.get("eTag", ""),
    }
    download = request.query_params.get("download")
    if download is not None:
        filename = download or row["name"].rsplit("/", 1)[-1]
        # RFC 6266: an ASCII fallback, and the real name percent-encoded as UTF-8.
        fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
        headers["Content-Disposition"] = (
            f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
        )
    size = os.fstat(file.fileno()).st_size
    return OpenFileResponse(
        file, size, media_type=meta.get("mimetype", "application/octet-stream"), headers=headers
    )


async def _open_current(
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


async def _serve_object(
    request: Request, gw: Gateway, conn: psycopg.AsyncConnection[Any], bucket_id: str, name: str
) -> Response:
    """The object's bytes, if ``conn`` (as the caller, or as the platform) can see its row."""
    row, file = await _open_current(gw, conn, bucket_id, name, "name, version, metadata")
    return _file_response(row, file, request)


async def download_object(request: Request, gw: Gateway) -> Response:
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    caller = caller_of(request, gw)
    async with as_caller(gw, caller) as conn:
        return await _serve_object(request, gw, conn, bucket_id, name)


async def public_object(request: Request, gw: Gateway) -> Response:
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    bucket = await _bucket(gw, bucket_id)
    if not bucket["public"]:
        raise bucket_not_found()
    async with gw.pool.connection() as conn:
        return await _serve_object(request, gw, conn, bucket_id, name)


async def object_info(request: Request, gw: Gateway) -> Response:
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    caller = caller_of(request, gw)
    async with as_caller(gw, caller) as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select * from storage.objects where bucket_id = %s and name = %s", (bucket_id, name)
        )
        row = await cur.fetchone()
    if row is None:
        raise not_found()
    meta = row["metadata"] or {}
    return JSONResponse(
        {
            "id": str(row["id"]),
            "name": row["name"],
            "version": row["version"],
            "bucket_id": row["bucket_id"],
            "size": meta.get("size"),
            "content_type": meta.get("mimetype"),
            "cache_control": meta.get("cacheControl"),
            "etag": meta.get("eTag"),
            "metadata": meta.get("userMetadata") or {},
            "last_modified": row["updated_at"].isoformat(),
            "created_at": row["created_at"].isoformat(),
        }
    )


# Remove, list, move, copy ---------------------------------------------------------------
async def _json_body(request: Request) -> dict[str, Any]:
    raw = await _read_limited(request, MAX_JSON_BODY)
    if raw is None:
        raise StorageError("413", "Payload too large", "EntityTooLarge", "Request body too large")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise StorageError("400", "InvalidRequest", "InvalidRequest", "Body is not valid JSON") from None
    if not isinstance(data, dict):
        raise StorageError("400", "InvalidRequest", "InvalidRequest", "Body must be a JSON object")
    return data


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


async def remove_objects(request: Request, gw: Gateway) -> Response:
    bucket_id = request.path_params["bucket"]
    caller = caller_of(request, gw)
    body = await _json_body(request)
    prefixes = body.get("prefixes")
    if (
        not isinstance(prefixes, list)
        or not all(isinstance(p, str) for p in prefixes)
        or len(prefixes) > 1000
    ):
        raise StorageError(
            "400", "InvalidRequest", "InvalidRequest", "prefixes must be a list of up to 1000 names"
        )
    try:
        async with as_caller(gw, caller) as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "delete from storage.objects where bucket_id = %s and name = any(%s) returning *",
                (bucket_id, prefixes),
            )
            rows = await cur.fetchall()
    except psycopg.Error as exc:
        raise _from_db(exc) from None
    store(gw).discard(*(r["version"] for r in rows))
    return JSONResponse([_row_json(r) for r in rows])


def _whole(value: Any, default: int, name: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise StorageError(
            "400", "InvalidRequest", "InvalidRequest", f"{name} must be a non-negative integer"
        )
    return int(value)


_SORT_COLUMNS = {"name", "updated_at", "created_at", "last_accessed_at"}


async def list_objects(request: Request, gw: Gateway) -> Response:
    bucket_id = request.path_params["bucket"]
    caller = caller_of(request, gw)
    body = await _json_body(request)
    prefix = str(body.get("prefix") or "").strip("/")
    limit = min(_whole(body.get("limit"), 100, "limit"), 1500)
    offset = _whole(body.get("offset"), 0, "offset")
    search = str(body.get("search") or "").lower()
    sort = body.get("sortBy") or {}
    if not isinstance(sort, dict):
        raise StorageError("400", "InvalidRequest", "InvalidRequest", "sortBy must be an object")
    column = (
        sort["column"] if isinstance(sort.get("column"), str) and sort["column"] in _SORT_COLUMNS else "name"
    )
    reverse = str(sort.get("order", "asc")).lower() == "desc"
    base = f"{prefix}/" if prefix else ""
    async with as_caller(gw, caller) as conn, conn.cursor(row_factory=dict_row) as cur:
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


async def _transfer(request: Request, gw: Gateway) -> tuple[Caller, str, str, str, str]:
    """(caller, bucket, source, destination bucket, destination) of a move or copy."""
    caller = caller_of(request, gw)
    body = await _json_body(request)
    bucket_id = str(body.get("bucketId") or "")
    source = check_name(str(body.get("sourceKey") or ""))
    dest = check_name(str(body.get("destinationKey") or ""))
    dest_bucket = str(body.get("destinationBucket") or bucket_id)
    await _bucket(gw, dest_bucket)
    return caller, bucket_id, source, dest_bucket, dest


async def move_object(request: Request, gw: Gateway) -> Response:
    caller, bucket_id, source, dest_bucket, dest = await _transfer(request, gw)
    try:
        async with as_caller(gw, caller) as conn:
            await _lock_names(conn, (bucket_id, source), (dest_bucket, dest))
            cur = await conn.execute(
                """update storage.objects set bucket_id = %s, name = %s, updated_at = now()
                    where bucket_id = %s and name = %s""",
                (dest_bucket, dest, bucket_id, source),
            )
            if cur.rowcount == 0:
                raise not_found()
    except psycopg.Error as exc:
        raise _from_db(exc) from None
    return JSONResponse({"message": "Successfully moved"})


async def copy_object(request: Request, gw: Gateway) -> Response:
    caller, bucket_id, source, dest_bucket, dest = await _transfer(request, gw)
    objects = store(gw)
    version = str(uuid.uuid4())
    try:
        async with as_caller(gw, caller) as conn, conn.cursor(row_factory=dict_row) as cur:
            await _lock_names(conn, (dest_bucket, dest))
            src, file = await _open_current(gw, conn, bucket_id, source, "*")
            with file, open(objects.path(version), "wb") as out:
                shutil.copyfileobj(file, out)
            await cur.execute(
                """insert into storage.objects (bucket_id, name, owner, owner_id, metadata, version)
                   values (%s, %s, %s, %s, %s, %s) returning id""",
                (
                    dest_bucket,
                    dest,
                    caller.user_id if _is_uuid(caller.user_id) else None,
                    caller.user_id,
                    Jsonb(src["metadata"]),
                    version,
                ),
            )
            row = await cur.fetchone()
    except psycopg.Error as exc:
        objects.discard(version)
        raise _from_db(exc) from None
    except BaseException:
        objects.discard(version)
        raise
    assert row is not None
    return JSONResponse({"Id": str(row["id"]), "Key": f"{dest_bucket}/{dest}"})


# Signed URLs ----------------------------------------------------------------------------
def _expires_in(body: dict[str, Any]) -> int:
    try:
        value = int(body.get("expiresIn"))  # type: ignore[arg-type]  # the client sends a string
    except (TypeError, ValueError):
        raise StorageError("400", "InvalidRequest", "InvalidRequest", "expiresIn must be a number") from None
    if value < 1:
        raise StorageError("400", "InvalidRequest", "InvalidRequest", "expiresIn must be positive")
    return value


def _sign(gw: Gateway, key: str, expires_in: int) -> str:
    token = jwt.encode(
        {"url": key, "exp": int(time.time()) + expires_in}, gw.settings.jwt_secret, algorithm="HS256"
    )
    return f"/object/sign/{key}?token={token}"


async def _visible(gw: Gateway, caller: Caller, bucket_id: str, names: list[str]) -> set[str]:
    async with as_caller(gw, caller) as conn:
        cur = await conn.execute(
            "select name from storage.objects where bucket_id = %s and name = any(%s)", (bucket_id, names)
        )
        return {r[0] for r in await cur.fetchall()}


async def sign_object(request: Request, gw: Gateway) -> Response:
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    caller = caller_of(request, gw)
    expires = _expires_in(await _json_body(request))
    if name not in await _visible(gw, caller, bucket_id, [name]):
        raise not_found()
    return JSONResponse({"signedURL": _sign(gw, f"{bucket_id}/{name}", expires)})


async def sign_objects(request: Request, gw: Gateway) -> Response:
    bucket_id = request.path_params["bucket"]
    caller = caller_of(request, gw)
    body = await _json_body(request)
    paths = body.get("paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise StorageError("400", "InvalidRequest", "InvalidRequest", "paths must be a list of names")
    expires = _expires_in(body)
    visible = await _visible(gw, caller, bucket_id, paths)
    return JSONResponse(
        [
            {"error": None, "path": p, "signedURL": _sign(gw, f"{bucket_id}/{p}", expires)}
            if p in visible
            else {
                "error": "Either the object does not exist or you do not have access to it",
                "path": p,
                "signedURL": None,
            }
            for p in paths
        ]
    )


async def signed_object(request: Request, gw: Gateway) -> Response:
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    try:
        claims = jwt.decode(
            request.query_params.get("token", ""), gw.settings.jwt_secret, algorithms=["HS256"]
        )
    except jwt.PyJWTError as exc:
        raise StorageError(
            "400", "InvalidSignature", "InvalidSignature", f"invalid signature: {exc}"
        ) from None
    if claims.get("url") != f"{bucket_id}/{name}":
        raise StorageError(
            "400", "InvalidSignature", "InvalidSignature", "The signature does not match the object"
        )
    async with gw.pool.connection() as conn:
        return await _serve_object(request, gw, conn, bucket_id, name)


# Buckets --------------------------------------------------------------------------------
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


def _bucket_options(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "public" in body:
        out["public"] = bool(body["public"])
    if body.get("file_size_limit") is not None:
        try:
            out["file_size_limit"] = parse_size(body["file_size_limit"])
        except Exception:
            raise StorageError(
                "400", "InvalidRequest", "InvalidRequest", "file_size_limit is not a size"
            ) from None
    if "allowed_mime_types" in body:
        mimes = body["allowed_mime_types"]
        if mimes is not None and (not isinstance(mimes, list) or not all(isinstance(m, str) for m in mimes)):
            raise StorageError("400", "InvalidRequest", "InvalidRequest", "allowed_mime_types must be a list")
        out["allowed_mime_types"] = mimes
    return out


async def list_buckets(request: Request, gw: Gateway) -> Response:
    caller = caller_of(request, gw)
    async with as_caller(gw, caller) as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("select * from storage.buckets order by name")
        rows = await cur.fetchall()
    return JSONResponse([_bucket_json(r) for r in rows])


async def create_bucket(request: Request, gw: Gateway) -> Response:
    caller = caller_of(request, gw)
    body = await _json_body(request)
    bucket_id = str(body.get("id") or body.get("name") or "")
    name = str(body.get("name") or bucket_id)
    if not bucket_id or "/" in bucket_id or len(bucket_id) > 100 or not bucket_id.isprintable():
        raise StorageError("400", "Invalid Input", "InvalidBucketName", "Bucket name invalid")
    opts = _bucket_options(body)
    try:
        async with as_caller(gw, caller) as conn:
            await conn.execute(
                """insert into storage.buckets (id, name, owner, public, file_size_limit, allowed_mime_types)
                   values (%s, %s, %s, %s, %s, %s)""",
                (
                    bucket_id,
                    name,
                    caller.user_id if _is_uuid(caller.user_id) else None,
                    opts.get("public", False),
                    opts.get("file_size_limit"),
                    opts.get("allowed_mime_types"),
                ),
            )
    except psycopg.errors.UniqueViolation:
        raise StorageError("409", "Duplicate", "BucketAlreadyExists", "The resource already exists") from None
    except psycopg.Error as exc:
        raise _from_db(exc) from None
    return JSONResponse({"name": name})


async def bucket_detail(request: Request, gw: Gateway) -> Response:
    bucket_id = request.path_params["bucket"]
    caller = caller_of(request, gw)
    try:
        if request.method == "GET":
            async with as_caller(gw, caller) as conn, conn.cursor(row_factory=dict_row) as cur:
                await cur.execute("select * from storage.buckets where id = %s", (bucket_id,))
                row = await cur.fetchone()
            if row is None:
                raise bucket_not_found()
            return JSONResponse(_bucket_json(row))
        if request.method == "PUT":
            opts = _bucket_options(await _json_body(request))
            if not opts:
                raise StorageError("400", "InvalidRequest", "InvalidRequest", "nothing to update")
            sets = ", ".join(f"{k} = %s" for k in opts)
            async with as_caller(gw, caller) as conn:
                cur = await conn.execute(
                    f"update storage.buckets set {sets}, updated_at = now() where id = %s",
                    (*opts.values(), bucket_id),
                )
                if cur.rowcount == 0:
                    raise bucket_not_found()
            return JSONResponse({"message": "Successfully updated"})
        async with as_caller(gw, caller) as conn:
            cur = await conn.execute(
                "select 1 from storage.objects where bucket_id = %s limit 1", (bucket_id,)
            )
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
    except psycopg.Error as exc:
        raise _from_db(exc) from None


async def empty_bucket(request: Request, gw: Gateway) -> Response:
    bucket_id = request.path_params["bucket"]
    caller = caller_of(request, gw)
    await _bucket(gw, bucket_id)
    try:
        async with as_caller(gw, caller) as conn:
            cur = await conn.execute(
                "delete from storage.objects where bucket_id = %s returning version", (bucket_id,)
            )
            versions = [r[0] for r in await cur.fetchall()]
    except psycopg.Error as exc:
        raise _from_db(exc) from None
    store(gw).discard(*versions)
    return JSONResponse({"message": "Successfully emptied"})


def routes() -> list[Route]:
    return [
        Route("/bucket", endpoint(list_buckets), methods=["GET"]),
        Route("/bucket", endpoint(create_bucket), methods=["POST"]),
        Route("/bucket/{bucket}/empty", endpoint(empty_bucket), methods=["POST"]),
        Route("/bucket/{bucket}", endpoint(bucket_detail), methods=["GET", "PUT", "DELETE"]),
        Route("/object/list/{bucket}", endpoint(list_objects), methods=["POST"]),
        Route("/object/move", endpoint(move_object), methods=["POST"]),
        Route("/object/copy", endpoint(copy_object), methods=["POST"]),
        Route("/object/info/{bucket}/{name:path}", endpoint(object_info), methods=["GET"]),
        Route(
            "/object/public/{bucket}/{name:path}",
            endpoint(public_object, needs_key=False),
            methods=["GET", "HEAD"],
        ),
        Route(
            "/object/sign/{bucket}/{name:path}",
            endpoint(signed_object, needs_key=False),
            methods=["GET", "HEAD"],
        ),
        Route("/object/sign/{bucket}/{name:path}", endpoint(sign_object), methods=["POST"]),
        Route("/object/sign/{bucket}", endpoint(sign_objects), methods=["POST"]),
        Route(
            "/object/authenticated/{bucket}/{name:path}", endpoint(download_object), methods=["GET", "HEAD"]
        ),
        Route("/object/{bucket}/{name:path}", endpoint(download_object), methods=["GET", "HEAD"]),
        Route("/object/{bucket}/{name:path}", endpoint(upload_object), methods=["POST", "PUT"]),
        Route("/object/{bucket}", endpoint(remove_objects), methods=["DELETE"]),
    ]


__all__ = ["routes"]
