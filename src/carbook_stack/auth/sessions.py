"""A user's own routes: sign up, sign in (password and refresh-token grants), read and
change themselves, sign out. Refresh tokens are single-use and rotate; a reused one
revokes its whole session, as GoTrue's reuse detection does."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..service import AppState
from ..tokens import Caller, issue_access_token
from .http import AuthError, caller_of, json_body
from .users import (
    apply_user_changes,
    check_email,
    check_metadata,
    check_password,
    fetch_user,
    hash_password,
    insert_user,
    is_banned,
    password_matches,
    user_json,
)

__all__ = ["get_user", "health", "logout", "new_session", "settings", "signup", "token", "update_user"]


def _user_caller(request: Request, state: AppState) -> Caller:
    """The signed-in caller, with its claims checked as GoTrue checks them before it looks
    anything up: a ``sub`` and a ``session_id`` that are UUIDs."""
    caller = caller_of(request, state)
    if caller.role != "authenticated" or not caller.user_id:
        raise AuthError(403, "bad_jwt", "invalid claim: missing sub claim")
    if not _is_uuid(caller.user_id):
        raise AuthError(400, "bad_jwt", "invalid claim: sub claim must be a UUID")
    session_id = caller.claims.get("session_id")
    if session_id and not _is_uuid(str(session_id)):
        raise AuthError(403, "bad_jwt", "invalid claim: session_id claim must be a UUID")
    return caller


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def new_session(
    state: AppState, conn: psycopg.AsyncConnection[Any], user: dict[str, Any]
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
    fresh = await fetch_user(conn, "id = %s", user["id"])
    assert fresh is not None
    return _session_json(state, fresh, str(session_id), refresh)


def _session_json(state: AppState, user: dict[str, Any], session_id: str, refresh: str) -> dict[str, Any]:
    body = user_json(user)
    token, exp = issue_access_token(
        keys=state.keys,
        user=body,
        session_id=session_id,
        expires_in=state.settings.jwt_expiry,
        issuer=f"{state.settings.api_url}/auth/v1",
    )
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": state.settings.jwt_expiry,
        "expires_at": exp,
        "refresh_token": refresh,
        "user": body,
    }


async def health(request: Request, state: AppState) -> Response:
    # Healthy means able to serve: the database is asked too (a 503 when it cannot answer).
    async with state.connection() as conn:
        await conn.execute("select 1")
    return JSONResponse({"version": "carbook-local", "name": "GoTrue", "description": "carbook local Auth"})


async def settings(request: Request, state: AppState) -> Response:
    return JSONResponse(
        {
            "external": {
                "email": True,
                "phone": False,
                "anonymous_users": state.settings.enable_anonymous_sign_ins,
            },
            "disable_signup": not state.settings.enable_signup,
            "mailer_autoconfirm": not state.settings.enable_confirmations,
            "phone_autoconfirm": False,
            "sms_provider": "",
            "saml_enabled": False,
        }
    )


async def signup(request: Request, state: AppState) -> Response:
    body = await json_body(request)
    if not body.get("email") and not body.get("phone"):
        # GoTrue routes a sign-up without email and phone (supabase-py's
        # sign_in_anonymously) to anonymous sign-in, before anything else is checked.
        return await _signup_anonymously(state, body)
    if not state.settings.enable_signup:
        raise AuthError(422, "signup_disabled", "Signups not allowed for this instance")
    email = check_email(body.get("email"))
    password = check_password(state, body.get("password"))
    data = check_metadata(body.get("data"), "data")
    hashed = await hash_password(password)
    confirm_first = state.settings.enable_confirmations
    async with state.connection() as conn:
        user = await insert_user(
            conn,
            email=email,
            password_hash=hashed,
            confirmed=not confirm_first,
            app_metadata={},
            user_metadata=data,
            identity_data=data,
        )
        if confirm_first:
            # [auth.email] enable_confirmations: GoTrue answers with the user and no session;
            # the address must be confirmed (here: by an admin, there is no mail) first.
            shown = user_json(user)
            return JSONResponse({**shown, "confirmation_sent_at": shown["created_at"]})
        return JSONResponse(await new_session(state, conn, user))


async def _signup_anonymously(state: AppState, body: dict[str, Any]) -> Response:
    """An anonymous user and their session: role ``authenticated``, ``is_anonymous`` in
    the user and the token, no email, no identity ([auth] enable_anonymous_sign_ins)."""
    if not state.settings.enable_anonymous_sign_ins:
        raise AuthError(422, "anonymous_provider_disabled", "Anonymous sign-ins are disabled")
    if not state.settings.enable_signup:
        raise AuthError(422, "signup_disabled", "Signups not allowed for this instance")
    data = check_metadata(body.get("data"), "data")
    async with state.connection() as conn:
        user = await insert_user(
            conn, email=None, password_hash=None, confirmed=False, app_metadata={}, user_metadata=data
        )
        return JSONResponse(await new_session(state, conn, user))


async def token(request: Request, state: AppState) -> Response:
    grant = request.query_params.get("grant_type")
    body = await json_body(request)
    if grant == "password":
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
            raise AuthError(400, "validation_failed", "missing email or phone")
        async with state.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "select id, encrypted_password, email_confirmed_at, banned_until from auth.users"
                " where lower(email) = lower(%s) and deleted_at is null",
                (email.strip(),),
            )
            found = await cur.fetchone()
        # bcrypt's tens of milliseconds hold no pooled connection: under a burst of
        # sign-ins the pool would otherwise be the queue.
        if not await password_matches(password, found["encrypted_password"] if found else None):
            raise AuthError(400, "invalid_credentials", "Invalid login credentials")
        assert found is not None
        if found["email_confirmed_at"] is None:
            raise AuthError(400, "email_not_confirmed", "Email not confirmed")
        if is_banned(found):
            raise AuthError(400, "user_banned", "User is banned")
        async with state.connection() as conn:
            return JSONResponse(await new_session(state, conn, found))
    if grant == "refresh_token":
        refresh = body.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise AuthError(400, "validation_failed", "refresh_token required")
        async with state.connection() as conn:
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
                    # Before the rotation: raised here, the transaction leaves the token as it was.
                    bcur = await conn.execute(
                        "select banned_until > now() from auth.users where id = %s", (user_id,)
                    )
                    if (await bcur.fetchone() or (False,))[0]:
                        raise AuthError(400, "user_banned", "User is banned")
                    new_refresh = secrets.token_urlsafe(24)
                    await conn.execute(
                        """insert into auth.refresh_tokens (token, user_id, session_id, parent)
                           values (%s, %s, %s, %s)""",
                        (new_refresh, user_id, session_id, refresh),
                    )
            if used_error is not None:
                raise used_error
            user = await fetch_user(conn, "id = %s", user_id)
            if user is None:
                raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
            if is_banned(user):
                raise AuthError(400, "user_banned", "User is banned")
            return JSONResponse(_session_json(state, user, str(session_id), new_refresh))
    raise AuthError(400, "unsupported_grant_type", "unsupported_grant_type")


async def _current_user(
    request: Request, state: AppState, conn: psycopg.AsyncConnection[Any]
) -> tuple[Caller, dict[str, Any]]:
    caller = _user_caller(request, state)
    session_id = caller.claims.get("session_id")
    if session_id:
        cur = await conn.execute("select 1 from auth.sessions where id = %s", (uuid.UUID(str(session_id)),))
        if await cur.fetchone() is None:
            raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    # As UUIDs, not text: GoTrue reads an upper-case or braced sub as the same user.
    user = await fetch_user(conn, "id = %s", uuid.UUID(str(caller.user_id)))
    if user is None:
        raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
    return caller, user


async def get_user(request: Request, state: AppState) -> Response:
    async with state.connection() as conn:
        _, user = await _current_user(request, state, conn)
        return JSONResponse(user_json(user))


async def update_user(request: Request, state: AppState) -> Response:
    body = await json_body(request)
    async with state.connection() as conn:
        _, user = await _current_user(request, state, conn)
        row = await apply_user_changes(state, conn, user["id"], body, admin=False)
        return JSONResponse(user_json(row))


async def logout(request: Request, state: AppState) -> Response:
    scope = request.query_params.get("scope", "global")
    if scope not in {"global", "local", "others"}:
        raise AuthError(400, "validation_failed", f'Unsupported logout scope "{scope}"')
    caller = _user_caller(request, state)
    session_id = str(caller.claims.get("session_id") or "")
    async with state.connection() as conn:
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
