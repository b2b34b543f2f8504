"""``/auth/v1``: the subset of Supabase Auth (GoTrue) that supabase-py uses.

Same paths, JSON shapes and error codes as GoTrue, so ``supabase_auth`` builds its
``Session``/``User`` models and raises ``AuthApiError`` with the right ``code``.
Passwords are bcrypt hashes in ``auth.users``; refresh tokens are single-use and rotate
(a reused one revokes its whole session, as GoTrue's reuse detection does).
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from datetime import datetime
from typing import Any

import anyio
import bcrypt
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .gateway import MAX_JSON_BODY, Gateway, ServiceError, _read_limited, bearer_of, endpoint
from .tokens import Caller, TokenError, issue_access_token, verify_token

API_VERSION = "2024-01-01"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_USER_COLUMNS = """id, aud, role, email, email_confirmed_at, last_sign_in_at, raw_app_meta_data,
                   raw_user_meta_data, is_anonymous, banned_until, created_at, updated_at"""
# Compared against when the email is unknown, so both answers take as long.
_DUMMY_HASH = bcrypt.hashpw(b"carbook-timing-equaliser", bcrypt.gensalt(rounds=10))
BCRYPT_ROUNDS = 10


class AuthError(ServiceError):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self, request: Request) -> Response:
        return error_response(request, self)


def error_response(request: Request, err: AuthError) -> JSONResponse:
    """GoTrue's error body: the 2024-01-01 shape when the client asks for it, else the legacy one."""
    if request.headers.get("x-supabase-api-version", "") >= API_VERSION:
        body: dict[str, Any] = {"code": err.code, "message": err.message, **err.extra}
    else:
        body = {"code": err.status, "error_code": err.code, "msg": err.message, **err.extra}
    return JSONResponse(
        body,
        status_code=err.status,
        headers={"X-Supabase-Api-Version": API_VERSION, "x-sb-error-code": err.code},
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def user_json(row: dict[str, Any]) -> dict[str, Any]:
    confirmed = _iso(row["email_confirmed_at"])
    return {
        "id": str(row["id"]),
        "aud": row["aud"],
        "role": row["role"],
        "email": row["email"] or "",
        "email_confirmed_at": confirmed,
        "phone": "",
        "confirmed_at": confirmed,
        "last_sign_in_at": _iso(row["last_sign_in_at"]),
        "app_metadata": row["raw_app_meta_data"] or {},
        "user_metadata": row["raw_user_meta_data"] or {},
        "identities": [],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "is_anonymous": bool(row["is_anonymous"]),
        **({"banned_until": _iso(row["banned_until"])} if row["banned_until"] else {}),
    }


async def _json(request: Request) -> dict[str, Any]:
    raw = await _read_limited(request, MAX_JSON_BODY)
    if raw is None:
        raise AuthError(413, "request_too_large", "Request body too large")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise AuthError(400, "bad_json", "Could not parse request body as JSON") from None
    if not isinstance(data, dict):
        raise AuthError(400, "bad_json", "Request body must be a JSON object")
    return data


def _caller(request: Request, gw: Gateway) -> Caller:
    token = bearer_of(request)
    if not token:
        raise AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token")
    try:
        return verify_token(token, gw.settings.jwt_secret)
    except TokenError as exc:
        raise AuthError(403, "bad_jwt", f"invalid JWT: {exc}") from None


def _user_caller(request: Request, gw: Gateway) -> Caller:
    caller = _caller(request, gw)
    if caller.role != "authenticated" or not caller.user_id:
        raise AuthError(403, "bad_jwt", "invalid claim: missing sub claim")
    return caller


def _admin_caller(request: Request, gw: Gateway) -> Caller:
    caller = _caller(request, gw)
    if not caller.is_service_role:
        raise AuthError(403, "not_admin", "User not allowed")
    return caller


def _check_password(gw: Gateway, password: Any) -> str:
    if not isinstance(password, str) or not password:
        raise AuthError(400, "validation_failed", "Signup requires a valid password")
    minimum = gw.settings.minimum_password_length
    if len(password) < minimum:
        raise AuthError(
            422,
            "weak_password",
            f"Password should be at least {minimum} characters.",
            weak_password={"reasons": ["length"]},
        )
    return password


def _check_email(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AuthError(400, "validation_failed", "missing email or phone")
    email = value.strip().lower()
    if not _EMAIL.match(email) or len(email) > 255:
        raise AuthError(400, "validation_failed", "Unable to validate email address: invalid format")
    return email


def _metadata(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AuthError(400, "validation_failed", f"{name} must be a JSON object")
    return value


async def _hash(password: str) -> str:
    hashed = await anyio.to_thread.run_sync(
        lambda: bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
    )
    return hashed.decode()


async def _password_matches(password: str, stored: str | None) -> bool:
    target = stored.encode() if stored else _DUMMY_HASH
    ok = await anyio.to_thread.run_sync(lambda: bcrypt.checkpw(password.encode(), target))
    return ok and stored is not None


async def _fetch_user(conn: psycopg.AsyncConnection[Any], where: str, value: Any) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"select {_USER_COLUMNS} from auth.users where {where}", (value,))
        return await cur.fetchone()


async def _new_session(
    gw: Gateway, conn: psycopg.AsyncConnection[Any], user: dict[str, Any]
) -> dict[str, Any]:
    """A session row, a refresh token and an access token for ``user``."""
    session_id = uuid.uuid4()
    refresh = secrets.token_urlsafe(24)
    async with conn.transaction():
        await conn.execute(
            "insert into auth.sessions (id, user_id) values (%s, %s)", (session_id, user["id"])
        )
        await conn.execute(
            "insert into auth.refresh_tokens (token, user_id, session_id) values (%s, %s, %s)",
            (refresh, user["id"], session_id),
        )
        await conn.execute("update auth.users set last_sign_in_at = now() where id = %s", (user["id"],))
    fresh = await _fetch_user(conn, "id = %s", user["id"])
    assert fresh is not None
    return _session_json(gw, fresh, str(session_id), refresh)


def _session_json(gw: Gateway, user: dict[str, Any], session_id: str, refresh: str) -> dict[str, Any]:
    body = user_json(user)
    token, exp = issue_access_token(
        secret=gw.settings.jwt_secret,
        user=body,
        session_id=session_id,
        expires_in=gw.settings.jwt_expiry,
        issuer=f"{gw.settings.api_url}/auth/v1",
    )
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": gw.settings.jwt_expiry,
        "expires_at": exp,
        "refresh_token": refresh,
        "user": body,
    }


async def _insert_user(
    conn: psycopg.AsyncConnection[Any],
    *,
    email: str,
    password_hash: str | None,
    confirmed: bool,
    app_metadata: dict[str, Any],
    user_metadata: dict[str, Any],
    user_id: uuid.UUID | None = None,
    duplicate_code: str = "user_already_exists",
) -> dict[str, Any]:
    app_meta = {"provider": "email", "providers": ["email"], **app_metadata}
    try:
        async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"""insert into auth.users (id, email, encrypted_password, email_confirmed_at,
                                            raw_app_meta_data, raw_user_meta_data)
                    values (coalesce(%s, gen_random_uuid()), %s, %s,
                            case when %s then now() end, %s, %s)
                    returning {_USER_COLUMNS}""",
                (user_id, email, password_hash, confirmed, Jsonb(app_meta), Jsonb(user_metadata)),
            )
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        if duplicate_code == "email_exists":
            raise AuthError(
                422, "email_exists", "A user with this email address has already been registered"
            ) from None
        raise AuthError(422, "user_already_exists", "User already registered") from None
    assert row is not None
    return row


# Routes --------------------------------------------------------------------------------
async def health(request: Request, gw: Gateway) -> Response:
    return JSONResponse({"version": "carbook-local", "name": "GoTrue", "description": "carbook local Auth"})


async def settings(request: Request, gw: Gateway) -> Response:
    return JSONResponse(
        {
            "external": {"email": True, "phone": False, "anonymous_users": False},
            "disable_signup": not gw.settings.enable_signup,
            "mailer_autoconfirm": not gw.settings.enable_confirmations,
            "phone_autoconfirm": False,
            "sms_provider": "",
            "saml_enabled": False,
        }
    )


async def signup(request: Request, gw: Gateway) -> Response:
    if not gw.settings.enable_signup:
        raise AuthError(422, "signup_disabled", "Signups not allowed for this instance")
    body = await _json(request)
    email = _check_email(body.get("email"))
    password = _check_password(gw, body.get("password"))
    data = _metadata(body.get("data"), "data")
    hashed = await _hash(password)
    confirm_first = gw.settings.enable_confirmations
    async with gw.pool.connection() as conn:
        user = await _insert_user(
            conn,
            email=email,
            password_hash=hashed,
            confirmed=not confirm_first,
            app_metadata={},
            user_metadata=data,
        )
        if confirm_first:
            # [auth.email] enable_confirmations: GoTrue answers with the user and no session;
            # the address must be confirmed (here: by an admin, there is no mail) first.
            shown = user_json(user)
            return JSONResponse({**shown, "confirmation_sent_at": shown["created_at"]})
        return JSONResponse(await _new_session(gw, conn, user))


async def token(request: Request, gw: Gateway) -> Response:
    grant = request.query_params.get("grant_type")
    body = await _json(request)
    if grant == "password":
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
            raise AuthError(400, "validation_failed", "missing email or phone")
        async with gw.pool.connection() as conn:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    "select id, encrypted_password, email_confirmed_at from auth.users"
                    " where lower(email) = lower(%s) and deleted_at is null",
                    (email.strip(),),
                )
                found = await cur.fetchone()
            if not await _password_matches(password, found["encrypted_password"] if found else None):
                raise AuthError(400, "invalid_credentials", "Invalid login credentials")
            assert found is not None
            if found["email_confirmed_at"] is None:
                raise AuthError(400, "email_not_confirmed", "Email not confirmed")
            return JSONResponse(await _new_session(gw, conn, found))
    if grant == "refresh_token":
        refresh = body.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise AuthError(400, "validation_failed", "refresh_token required")
        async with gw.pool.connection() as conn:
            async with conn.transaction():
                rcur = await conn.execute(
                    """update auth.refresh_tokens set revoked = true, updated_at = now()
                        where token = %s and not revoked
                    returning user_id, session_id""",
                    (refresh,),
                )
                used = await rcur.fetchone()
                if used is None:
                    rcur = await conn.execute(
                        "select session_id from auth.refresh_tokens where token = %s", (refresh,)
                    )
                    reused = await rcur.fetchone()
                    if reused is None:
                        raise AuthError(
                            400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found"
                        )
                    rcur = await conn.execute(
                        """select token, user_id, session_id from auth.refresh_tokens
                            where parent = %s and not revoked""",
                        (refresh,),
                    )
                    active_child = await rcur.fetchone()
                    if active_child is not None:
                        # Two refreshes raced with the same token (two tabs, two processes, a
                        # lost reply): like GoTrue, answer with the token its twin got.
                        used_error = None
                        new_refresh, user_id, session_id = active_child
                    else:
                        # Reuse of a token whose successor was used too: treat the session
                        # as stolen and end it.
                        await conn.execute("delete from auth.sessions where id = %s", (reused[0],))
                        used_error = AuthError(
                            400, "refresh_token_already_used", "Invalid Refresh Token: Already Used"
                        )
                else:
                    used_error = None
                    user_id, session_id = used
                    new_refresh = secrets.token_urlsafe(24)
                    await conn.execute(
                        """insert into auth.refresh_tokens (token, user_id, session_id, parent)
                           values (%s, %s, %s, %s)""",
                        (new_refresh, user_id, session_id, refresh),
                    )
            if used_error is not None:
                raise used_error
            user = await _fetch_user(conn, "id = %s", user_id)
            if user is None:
                raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
            return JSONResponse(_session_json(gw, user, str(session_id), new_refresh))
    raise AuthError(400, "unsupported_grant_type", "unsupported_grant_type")


async def _current_user(
    request: Request, gw: Gateway, conn: psycopg.AsyncConnection[Any]
) -> tuple[Caller, dict[str, Any]]:
    caller = _user_caller(request, gw)
    session_id = caller.claims.get("session_id")
    if session_id:
        cur = await conn.execute("select 1 from auth.sessions where id::text = %s", (str(session_id),))
        if await cur.fetchone() is None:
            raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    user = await _fetch_user(conn, "id::text = %s", caller.user_id)
    if user is None:
        raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
    return caller, user


async def get_user(request: Request, gw: Gateway) -> Response:
    async with gw.pool.connection() as conn:
        _, user = await _current_user(request, gw, conn)
        return JSONResponse(user_json(user))


async def _apply_user_changes(
    gw: Gateway, conn: psycopg.AsyncConnection[Any], user_id: Any, body: dict[str, Any], *, admin: bool
) -> dict[str, Any]:
    sets: list[str] = []
    params: list[Any] = []
    if "email" in body and body["email"] is not None:
        sets.append("email = %s")
        params.append(_check_email(body["email"]))
    if "password" in body and body["password"] is not None:
        sets.append("encrypted_password = %s")
        params.append(await _hash(_check_password(gw, body["password"])))
    meta_key = "user_metadata" if admin and "user_metadata" in body else "data"
    if body.get(meta_key) is not None:
        sets.append("raw_user_meta_data = raw_user_meta_data || %s")
        params.append(Jsonb(_metadata(body[meta_key], meta_key)))
    if admin and body.get("app_metadata") is not None:
        sets.append("raw_app_meta_data = raw_app_meta_data || %s")
        params.append(Jsonb(_metadata(body["app_metadata"], "app_metadata")))
    if admin and body.get("email_confirm") is True:
        sets.append("email_confirmed_at = coalesce(email_confirmed_at, now())")
    sets.append("updated_at = now()")
    try:
        async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"update auth.users set {', '.join(sets)} where id = %s returning {_USER_COLUMNS}",
                (*params, user_id),
            )
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise AuthError(
            422, "email_exists", "A user with this email address has already been registered"
        ) from None
    if row is None:
        raise AuthError(404, "user_not_found", "User not found")
    return row


async def update_user(request: Request, gw: Gateway) -> Response:
    body = await _json(request)
    async with gw.pool.connection() as conn:
        _, user = await _current_user(request, gw, conn)
        row = await _apply_user_changes(gw, conn, user["id"], body, admin=False)
        return JSONResponse(user_json(row))


async def logout(request: Request, gw: Gateway) -> Response:
    scope = request.query_params.get("scope", "global")
    if scope not in {"global", "local", "others"}:
        raise AuthError(400, "validation_failed", f'Unsupported logout scope "{scope}"')
    caller = _user_caller(request, gw)
    session_id = str(caller.claims.get("session_id") or "")
    async with gw.pool.connection() as conn:
        if scope == "global":
            await conn.execute("delete from auth.sessions where user_id::text = %s", (caller.user_id,))
        elif scope == "local":
            await conn.execute("delete from auth.sessions where id::text = %s", (session_id,))
        else:
            await conn.execute(
                "delete from auth.sessions where user_id::text = %s and id::text <> %s",
                (caller.user_id, session_id),
            )
    return Response(status_code=204)


async def admin_create_user(request: Request, gw: Gateway) -> Response:
    _admin_caller(request, gw)
    body = await _json(request)
    email = _check_email(body.get("email"))
    password = body.get("password")
    hashed = await _hash(_check_password(gw, password)) if password is not None else None
    user_id = None
    if body.get("id") is not None:
        try:
            user_id = uuid.UUID(str(body["id"]))
        except ValueError:
            raise AuthError(400, "validation_failed", "id must be a UUID") from None
    async with gw.pool.connection() as conn:
        row = await _insert_user(
            conn,
            email=email,
            password_hash=hashed,
            confirmed=body.get("email_confirm") is True,
            app_metadata=_metadata(body.get("app_metadata"), "app_metadata"),
            user_metadata=_metadata(body.get("user_metadata", body.get("data")), "user_metadata"),
            user_id=user_id,
            duplicate_code="email_exists",
        )
    return JSONResponse(user_json(row))


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name) or ""
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise AuthError(400, "validation_failed", f"Bad {name} parameter")
    return min(int(raw), maximum)


async def admin_list_users(request: Request, gw: Gateway) -> Response:
    _admin_caller(request, gw)
    page = _int_param(request, "page", 1, 1_000_000)
    per_page = _int_param(request, "per_page", 50, 1000)
    async with gw.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"select {_USER_COLUMNS} from auth.users order by created_at desc, id limit %s offset %s",
            (per_page, (page - 1) * per_page),
        )
        rows = await cur.fetchall()
        await cur.execute("select count(*) as n from auth.users")
        total = await cur.fetchone()
    assert total is not None
    return JSONResponse(
        {"users": [user_json(r) for r in rows], "aud": "authenticated"},
        headers={"X-Total-Count": str(total["n"])},
    )


def _uuid_param(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["user_id"])
    except ValueError:
        raise AuthError(404, "user_not_found", "User not found") from None


async def admin_user(request: Request, gw: Gateway) -> Response:
    _admin_caller(request, gw)
    user_id = _uuid_param(request)
    async with gw.pool.connection() as conn:
        if request.method == "GET":
            row = await _fetch_user(conn, "id = %s", user_id)
            if row is None:
                raise AuthError(404, "user_not_found", "User not found")
            return JSONResponse(user_json(row))
        if request.method == "PUT":
            body = await _json(request)
            return JSONResponse(user_json(await _apply_user_changes(gw, conn, user_id, body, admin=True)))
        cur = await conn.execute("delete from auth.users where id = %s", (user_id,))
        if cur.rowcount == 0:
            raise AuthError(404, "user_not_found", "User not found")
        return JSONResponse({})


def routes() -> list[Route]:
    return [
        Route("/health", endpoint(health), methods=["GET"]),
        Route("/settings", endpoint(settings), methods=["GET"]),
        Route("/signup", endpoint(signup), methods=["POST"]),
        Route("/token", endpoint(token), methods=["POST"]),
        Route("/user", endpoint(get_user), methods=["GET"]),
        Route("/user", endpoint(update_user), methods=["PUT"]),
        Route("/logout", endpoint(logout), methods=["POST"]),
        Route("/admin/users", endpoint(admin_create_user), methods=["POST"]),
        Route("/admin/users", endpoint(admin_list_users), methods=["GET"]),
        Route("/admin/users/{user_id}", endpoint(admin_user), methods=["GET", "PUT", "DELETE"]),
    ]
