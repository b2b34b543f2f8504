"""Uploads, with the caller's token or a signed upload URL's: a multipart or raw body
streamed to a temporary file in the store's folder, checked against the bucket's size
and type limits as it arrives, and visible only when its row commits. The whole body is
never held in memory."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from carbook_sdk.media import IMAGE_TYPES, detect_image_type

from ..service import AppState, InvalidInput, ascii_int, load_json
from .access import as_caller, become, bucket_row, caller_of, check_header_value, check_name
from .errors import StorageError, invalid_request, too_large
from .signing import UploadGrant, verify_upload_token
from .store import object_metadata, store, write_object

__all__ = ["Upload", "upload_object", "upload_signed_object"]

#: Room for multipart boundaries and small fields around the file part.
MULTIPART_OVERHEAD = 64 * 1024
#: Declared types whose first bytes are checked against what they claim.
SNIFFED_TYPES = frozenset(mime for mime, _, _ in IMAGE_TYPES)
#: Form fields besides the file (cacheControl, contentType, metadata, …): a few, each small.
MAX_FORM_FIELDS = 16


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
            raise too_large(self.limit)
        self.md5.update(data)
        if len(self.head) < 16:
            self.head += data[: 16 - len(self.head)]
        self._file.write(data)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def metadata(self) -> dict[str, Any]:
        return object_metadata(self.md5.hexdigest(), self.size, self.mimetype, self.cache_control)


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
                raise invalid_request("only one file per upload")
            self.saw_file = True
            ctype = self._headers.get("content-type")
            if ctype:
                self.upload.mimetype = ctype
        else:
            if len(self.fields) >= MAX_FORM_FIELDS:
                raise invalid_request("too many form fields")
            self.fields[self._part] = bytearray()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.upload.write(data[start:end])
        elif self._part is not None:
            buf = self.fields[self._part]
            if len(buf) + (end - start) > 64 * 1024:
                raise invalid_request("form field too large")
            buf.extend(data[start:end])


async def _receive_upload(request: Request, upload: Upload) -> None:
    """Stream the request body into ``upload``; never holds the whole body in memory."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    length = request.headers.get("content-length")
    multipart = ctype == b"multipart/form-data"
    allowance = upload.limit + (MULTIPART_OVERHEAD if multipart else 0)
    declared = ascii_int(length or "")
    if declared is not None and declared > allowance:
        raise too_large(upload.limit)
    upload.open()
    try:
        if multipart:
            boundary = params.get(b"boundary")
            if not boundary:
                raise invalid_request("multipart boundary missing")
            parts = _Multipart(upload, boundary)
            async for chunk in request.stream():
                parts.parser.write(chunk)
            parts.parser.finalize()
            if not parts.saw_file:
                raise invalid_request("No file in the upload")
            fields = {k: bytes(v).decode("utf-8", "replace") for k, v in parts.fields.items()}
            if fields.get("contentType"):
                upload.mimetype = fields["contentType"]
            if fields.get("cacheControl"):
                upload.cache_control = f"max-age={fields['cacheControl']}"
            if fields.get("metadata"):
                try:
                    upload.user_metadata = load_json(bytes(parts.fields["metadata"]))
                except InvalidInput as exc:
                    raise invalid_request(f"metadata is not valid: {exc.message}") from None
        else:
            upload.mimetype = request.headers.get("content-type") or upload.mimetype
            if request.headers.get("cache-control"):
                upload.cache_control = request.headers["cache-control"]
            async for chunk in request.stream():
                upload.write(chunk)
    finally:
        upload.close()


async def _receive(request: Request, state: AppState, bucket_id: str) -> Upload:
    """The request's file, streamed to a temporary file in the store and checked against
    the bucket's size and type limits; the caller deletes ``upload.temp``."""
    bucket = await bucket_row(state, bucket_id)
    limit = min(
        state.settings.storage_file_size_limit,
        bucket["file_size_limit"] or state.settings.storage_file_size_limit,
    )
    upload = Upload(temp=store(state).temp(), limit=limit)
    try:
        try:
            await _receive_upload(request, upload)
        except ClientDisconnect:
            raise invalid_request("upload interrupted") from None
        # Sent back as headers by every download: refused now, or every download would fail.
        check_header_value("contentType", upload.mimetype)
        check_header_value("cacheControl", upload.cache_control)
        if not _mime_allowed(upload.mimetype, bucket["allowed_mime_types"]):
            mime = upload.mimetype.split(";")[0]
            raise StorageError(
                "415", "invalid_mime_type", "InvalidMimeType", f"mime type {mime} is not supported"
            )
        declared = _base_type(upload.mimetype)
        if (
            declared in SNIFFED_TYPES
            and (detect_image_type(upload.head, (declared,)) or ("",))[0] != declared
        ):
            # Stricter than hosted Storage, which trusts the declared type: an image bucket
            # here never holds bytes that are not the image they claim to be.
            raise StorageError(
                "415", "invalid_mime_type", "InvalidMimeType", f"the content is not {declared}"
            )
    except BaseException:
        upload.close()
        upload.temp.unlink(missing_ok=True)
        raise
    return upload


def _object_metadata(upload: Upload) -> dict[str, Any]:
    return {
        **upload.metadata(),
        **({"userMetadata": upload.user_metadata} if upload.user_metadata else {}),
    }


async def upload_object(request: Request, state: AppState) -> Response:
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    caller = caller_of(request, state)
    upsert = request.method == "PUT" or request.headers.get("x-upsert", "").lower() == "true"
    upload = await _receive(request, state, bucket_id)
    try:
        row_id = await write_object(
            as_caller(state, caller),
            store(state),
            upload.temp,
            bucket_id=bucket_id,
            name=name,
            metadata=_object_metadata(upload),
            caller=caller,
            upsert=upsert,
            must_exist=request.method == "PUT",  # PUT updates an object; it does not create one
        )
        return JSONResponse({"Id": row_id, "Key": f"{bucket_id}/{name}"})
    finally:
        upload.temp.unlink(missing_ok=True)


def _spent() -> StorageError:
    return StorageError(
        "400", "InvalidSignature", "InvalidSignature", "This signed upload URL has already been used"
    )


@contextlib.asynccontextmanager
async def _spending(state: AppState, grant: UploadGrant) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A transaction that spends the grant's token, then runs as its signer.

    The token's id goes in first, as the platform: a second upload with the same token
    waits on that row until the first commits (then fails) or rolls back (then goes on),
    so exactly one upload per token commits, and a failed one leaves the token unspent.
    """
    async with state.connection() as conn, conn.transaction():
        try:
            await conn.execute(
                "insert into storage.carbook_spent_upload_tokens (jti, expires_at) values (%s, %s)",
                (grant.jti, grant.expires_at),
            )
        except psycopg.errors.UniqueViolation:
            raise _spent() from None
        await become(conn, grant.signer)
        yield conn


async def upload_signed_object(request: Request, state: AppState) -> Response:
    """An upload with a signed upload URL's token alone: once, as the URL's signer (so the
    storage policies still decide), under the bucket's limits, replacing an object only
    if the URL was signed with ``x-upsert: true``."""
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    grant = verify_upload_token(
        state.settings.jwt_secret, request.query_params.get("token", ""), bucket_id, name
    )
    async with state.connection() as conn:
        cur = await conn.execute(
            "select 1 from storage.carbook_spent_upload_tokens where jti = %s", (grant.jti,)
        )
        if await cur.fetchone():
            raise _spent()  # said before the body is read; _spending decides for certain
    upload = await _receive(request, state, bucket_id)
    try:
        await write_object(
            _spending(state, grant),
            store(state),
            upload.temp,
            bucket_id=bucket_id,
            name=name,
            metadata=_object_metadata(upload),
            caller=grant.signer,
            upsert=grant.upsert,
        )
        return JSONResponse({"Key": f"{bucket_id}/{name}"})
    finally:
        upload.temp.unlink(missing_ok=True)
