"""Downloads: an object's bytes, whole or as a byte range, to its caller, to anyone when
its bucket is public, or to whoever holds a signed URL (``signing``)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import anyio
import psycopg
from starlette.requests import Request
from starlette.responses import Response

from ..service import AppState
from .access import as_caller, caller_of, check_name, public_bucket
from .store import open_current

__all__ = ["OpenFileResponse", "content_disposition", "download_object", "public_object", "serve_object"]


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


def content_disposition(filename: str) -> str:
    """``attachment`` with the name as Storage sends it: percent-encoded as UTF-8 the way
    JavaScript's ``encodeURIComponent`` does, in both ``filename`` and ``filename*``, so
    no name can break the header; an empty name (``?download`` with no value) is a bare
    ``attachment;``, as Storage sends it, and the browser takes the URL's last segment."""
    if not filename:
        return "attachment;"
    encoded = quote(filename, safe="!'()*")
    return f"attachment; filename={encoded}; filename*=UTF-8''{encoded}"


def _file_response(row: dict[str, Any], file: Any, request: Request) -> Response:
    meta = row["metadata"] or {}
    headers = {
        "Cache-Control": meta.get("cacheControl", "no-cache"),
        "ETag": meta.get("eTag", ""),
    }
    download = request.query_params.get("download")
    if download is not None:
        headers["Content-Disposition"] = content_disposition(download)
    size = os.fstat(file.fileno()).st_size
    return OpenFileResponse(
        file, size, media_type=meta.get("mimetype", "application/octet-stream"), headers=headers
    )


async def serve_object(
    request: Request, state: AppState, conn: psycopg.AsyncConnection[Any], bucket_id: str, name: str
) -> Response:
    """The object's bytes, if ``conn`` (as the caller, or as the platform) can see its row."""
    row, file = await open_current(state, conn, bucket_id, name, "name, version, metadata")
    return _file_response(row, file, request)


async def download_object(request: Request, state: AppState) -> Response:
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    caller = caller_of(request, state)
    async with as_caller(state, caller) as conn:
        return await serve_object(request, state, conn, bucket_id, name)


async def public_object(request: Request, state: AppState) -> Response:
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    await public_bucket(state, bucket_id)
    async with state.connection() as conn:
        return await serve_object(request, state, conn, bucket_id, name)
