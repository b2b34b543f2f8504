"""Signed URLs: an HS256 token that names one object and expires, so whoever holds the
URL can download that object without an API key (``sign_object``), or upload it once
(``sign_upload``, spent by ``upload.upload_signed_object``)."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jwt
from psycopg.types.json import Jsonb
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..service import AppState, ascii_int
from ..tokens import Caller
from .access import as_caller, bucket_row, caller_of, check_name, json_body, owner_of
from .download import serve_object
from .errors import StorageError, invalid_request, not_found

__all__ = [
    "UPLOAD_URL_LIFETIME",
    "UploadGrant",
    "sign_object",
    "sign_objects",
    "sign_upload",
    "sign_upload_token",
    "signed_object",
    "verify_upload_token",
]

#: Seconds a signed upload URL stays good, as Storage's ``uploadSignedUrlExpirationTime``.
UPLOAD_URL_LIFETIME = 2 * 60 * 60


#: Longest a signed URL may last, in seconds: about 68 years, so its expiry stays a
#: number every JWT library reads.
MAX_EXPIRES_IN = 2**31 - 1


def _expires_in(body: dict[str, Any]) -> int:
    """Seconds, from a number or a string of ASCII digits (storage3 sends either)."""
    raw = body.get("expiresIn")
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str):
        value = ascii_int(raw.strip())
    if value is None:
        raise invalid_request("expiresIn must be a number")
    if not 1 <= value <= MAX_EXPIRES_IN:
        raise invalid_request(f"expiresIn must be between 1 and {MAX_EXPIRES_IN}")
    return value


def _sign(state: AppState, key: str, expires_in: int) -> str:
    token = jwt.encode(
        {"url": key, "exp": int(time.time()) + expires_in}, state.settings.jwt_secret, algorithm="HS256"
    )
    return f"/object/sign/{key}?token={token}"


async def _visible(state: AppState, caller: Caller, bucket_id: str, names: list[str]) -> set[str]:
    async with as_caller(state, caller) as conn:
        cur = await conn.execute(
            "select name from storage.objects where bucket_id = %s and name = any(%s)", (bucket_id, names)
        )
        return {r[0] for r in await cur.fetchall()}


async def sign_object(request: Request, state: AppState) -> Response:
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    caller = caller_of(request, state)
    expires = _expires_in(await json_body(request))
    if name not in await _visible(state, caller, bucket_id, [name]):
        raise not_found()
    return JSONResponse({"signedURL": _sign(state, f"{bucket_id}/{name}", expires)})


async def sign_objects(request: Request, state: AppState) -> Response:
    bucket_id = request.path_params["bucket"]
    caller = caller_of(request, state)
    body = await json_body(request)
    paths = body.get("paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise invalid_request("paths must be a list of names")
    expires = _expires_in(body)
    visible = await _visible(state, caller, bucket_id, paths)
    return JSONResponse(
        [
            {"error": None, "path": p, "signedURL": _sign(state, f"{bucket_id}/{p}", expires)}
            if p in visible
            else {
                "error": "Either the object does not exist or you do not have access to it",
                "path": p,
                "signedURL": None,
            }
            for p in paths
        ]
    )


async def signed_object(request: Request, state: AppState) -> Response:
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    try:
        claims = jwt.decode(
            request.query_params.get("token", ""), state.settings.jwt_secret, algorithms=["HS256"]
        )
    except jwt.PyJWTError as exc:
        raise StorageError(
            "400", "InvalidSignature", "InvalidSignature", f"invalid signature: {exc}"
        ) from None
    if claims.get("url") != f"{bucket_id}/{name}":
        raise StorageError(
            "400", "InvalidSignature", "InvalidSignature", "The signature does not match the object"
        )
    async with state.connection() as conn:
        return await serve_object(request, state, conn, bucket_id, name)


# Signed uploads ------------------------------------------------------------------------
def _upload_key(secret: str) -> bytes:
    """The key upload tokens are signed with: derived from the JWT secret, so an upload
    token is never a JWT that PostgREST or Auth would take as a bearer token (hosted
    Storage signs URLs with a key of its own too)."""
    return hmac.new(secret.encode(), b"carbook storage upload url", hashlib.sha256).digest()


@dataclass(frozen=True)
class UploadGrant:
    """What a verified upload token allows: one upload of one object, as its signer."""

    jti: str
    expires_at: datetime
    signer: Caller
    upsert: bool


def sign_upload_token(
    secret: str, *, bucket_id: str, name: str, signer: Caller, upsert: bool, expires_in: int
) -> str:
    """A token that lets its holder upload ``bucket_id/name`` once, as ``signer``.

    It carries the signer's user id and role (never under ``role``: it must not pass for
    an access token anywhere), whether the upload may replace an object, and a ``jti``
    that the upload spends."""
    now = int(time.time())
    claims = {
        "url": f"{bucket_id}/{name}",
        "scope": "upload",
        "owner": signer.user_id,
        "owner_role": signer.role,
        "upsert": upsert,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + expires_in,
    }
    return jwt.encode(claims, _upload_key(secret), algorithm="HS256")


def verify_upload_token(secret: str, token: str, bucket_id: str, name: str) -> UploadGrant:
    """The grant of an upload token for ``bucket_id/name``.

    Raises:
        StorageError: no token, a forged, malformed or expired one, or one for another object.
    """
    if not token:
        raise invalid_request("querystring must have required property 'token'")
    try:
        claims = jwt.decode(
            token,
            _upload_key(secret),
            algorithms=["HS256"],
            options={"require": ["exp", "jti", "url", "scope"]},
        )
    except jwt.ExpiredSignatureError:
        raise StorageError("400", "ExpiredToken", "ExpiredToken", "The provided token has expired.") from None
    except jwt.PyJWTError as exc:
        raise StorageError("400", "InvalidJWT", "InvalidJWT", str(exc)) from None
    if claims["scope"] != "upload":
        raise StorageError("400", "InvalidSignature", "InvalidSignature", "Token is not scoped for upload")
    if claims["url"] != f"{bucket_id}/{name}":
        raise StorageError("400", "InvalidSignature", "InvalidSignature", "Invalid signature")
    try:
        jti = str(uuid.UUID(str(claims["jti"])))
    except ValueError:
        raise StorageError("400", "InvalidJWT", "InvalidJWT", "jti is not a UUID") from None
    owner, role = claims.get("owner"), str(claims.get("owner_role") or "anon")
    signer = Caller(role=role, claims={"role": role, **({"sub": owner} if owner else {})}, token="")
    return UploadGrant(
        jti=jti,
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        signer=signer,
        upsert=claims.get("upsert") is True,
    )


async def sign_upload(request: Request, state: AppState) -> Response:
    """A URL to upload one object without the signer's token, for two hours.

    Only a caller the storage policies let create that object (or, with ``x-upsert:
    true``, replace it) gets one: the row is tried as the caller and rolled back, as
    Storage's ``canUpload`` does. A name already taken without upsert is a 409 now, not
    after the upload."""
    bucket_id = request.path_params["bucket"]
    name = check_name(request.path_params["name"])
    caller = caller_of(request, state)
    upsert = request.headers.get("x-upsert", "").lower() == "true"
    await bucket_row(state, bucket_id)
    sql = """insert into storage.objects (bucket_id, name, owner, owner_id, metadata)
             values (%s, %s, %s, %s, %s)"""
    if upsert:
        sql += " on conflict (bucket_id, name) do update set metadata = excluded.metadata"
    async with as_caller(state, caller) as conn, conn.transaction(force_rollback=True):
        await conn.execute(sql, (bucket_id, name, owner_of(caller), caller.user_id, Jsonb({})))
    async with state.connection() as conn:
        # Spent tokens are kept only while they could still be presented.
        await conn.execute("delete from storage.carbook_spent_upload_tokens where expires_at < now()")
    token = sign_upload_token(
        state.settings.jwt_secret,
        bucket_id=bucket_id,
        name=name,
        signer=caller,
        upsert=upsert,
        expires_in=UPLOAD_URL_LIFETIME,
    )
    # Percent-encoded, so a name with '?' or '#' still makes a URL that names it.
    path = quote(f"{bucket_id}/{name}", safe="/")
    return JSONResponse({"url": f"/object/upload/sign/{path}?token={token}", "token": token})
