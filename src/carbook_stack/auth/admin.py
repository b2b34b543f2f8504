"""``/admin/users``: the service role creates, lists, reads, changes and deletes users."""

from __future__ import annotations

import uuid

from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..service import AppState, ascii_int
from ..tokens import Caller
from .http import AuthError, caller_of, json_body
from .users import (
    USER_COLUMNS,
    apply_user_changes,
    ban_seconds,
    check_email,
    check_metadata,
    check_password,
    check_role,
    fetch_user,
    hash_password,
    insert_user,
    user_json,
)

__all__ = ["admin_caller", "admin_create_user", "admin_list_users", "admin_user"]


def admin_caller(request: Request, state: AppState) -> Caller:
    caller = caller_of(request, state)
    if not caller.is_service_role:
        raise AuthError(403, "not_admin", "User not allowed")
    return caller


async def admin_create_user(request: Request, state: AppState) -> Response:
    admin_caller(request, state)
    body = await json_body(request)
    email = check_email(body.get("email"))
    check_role(body.get("role"))
    ban = ban_seconds(body["ban_duration"]) if body.get("ban_duration") not in (None, "") else None
    password = body.get("password")
    hashed = await hash_password(check_password(state, password)) if password is not None else None
    user_id = None
    if body.get("id") is not None:
        try:
            user_id = uuid.UUID(str(body["id"]))
        except ValueError:
            raise AuthError(400, "validation_failed", "id must be a UUID") from None
    app_metadata = check_metadata(body.get("app_metadata"), "app_metadata")
    user_metadata = check_metadata(body.get("user_metadata", body.get("data")), "user_metadata")
    async with state.connection() as conn, conn.transaction():
        row = await insert_user(
            conn,
            email=email,
            password_hash=hashed,
            confirmed=body.get("email_confirm") is True,
            app_metadata=app_metadata,
            user_metadata=user_metadata,
            user_id=user_id,
            duplicate_code="email_exists",
        )
        if ban:  # made and banned together, or not at all
            await conn.execute(
                "update auth.users set banned_until = now() + make_interval(secs => %s) where id = %s",
                (ban, row["id"]),
            )
            row = await fetch_user(conn, "id = %s", row["id"]) or row
    return JSONResponse(user_json(row))


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name) or ""
    if not raw:
        return default
    value = ascii_int(raw)
    if value is None or value < 1:
        raise AuthError(400, "validation_failed", f"Bad {name} parameter")
    return min(value, maximum)


async def admin_list_users(request: Request, state: AppState) -> Response:
    admin_caller(request, state)
    page = _int_param(request, "page", 1, 1_000_000)
    per_page = _int_param(request, "per_page", 50, 1000)
    async with state.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"select {USER_COLUMNS} from auth.users order by created_at desc, id limit %s offset %s",
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


async def admin_user(request: Request, state: AppState) -> Response:
    admin_caller(request, state)
    user_id = _uuid_param(request)
    async with state.connection() as conn:
        if request.method == "GET":
            row = await fetch_user(conn, "id = %s", user_id)
            if row is None:
                raise AuthError(404, "user_not_found", "User not found")
            return JSONResponse(user_json(row))
        if request.method == "PUT":
            body = await json_body(request)
            return JSONResponse(user_json(await apply_user_changes(state, conn, user_id, body, admin=True)))
        cur = await conn.execute("delete from auth.users where id = %s", (user_id,))
        if cur.rowcount == 0:
            raise AuthError(404, "user_not_found", "User not found")
        return JSONResponse({})
