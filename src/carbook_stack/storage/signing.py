"""Signed URLs: an HS256 token that names one object and expires, so whoever holds the
URL can download that object without an API key."""

from __future__ import annotations

import time
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..gateway import Gateway
from ..tokens import Caller
from .access import as_caller, caller_of, check_name, json_body
from .download import serve_object
from .errors import StorageError, invalid_request, not_found

__all__ = ["sign_object", "sign_objects", "signed_object"]


def _expires_in(body: dict[str, Any]) -> int:
    try:
        value = int(body.get("expiresIn"))  # type: ignore[arg-type]  # the client sends a string
    except (TypeError, ValueError):
        raise invalid_request("expiresIn must be a number") from None
    if value < 1:
        raise invalid_request("expiresIn must be positive")
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
    expires = _expires_in(await json_body(request))
    if name not in await _visible(gw, caller, bucket_id, [name]):
        raise not_found()
    return JSONResponse({"signedURL": _sign(gw, f"{bucket_id}/{name}", expires)})


async def sign_objects(request: Request, gw: Gateway) -> Response:
    bucket_id = request.path_params["bucket"]
    caller = caller_of(request, gw)
    body = await json_body(request)
    paths = body.get("paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise invalid_request("paths must be a list of names")
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
    async with gw.connection() as conn:
        return await serve_object(request, gw, conn, bucket_id, name)
