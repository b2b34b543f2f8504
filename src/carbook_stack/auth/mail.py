"""Auth's routes that send mail, with a local mailbox instead of a mail server.

``supabase start`` delivers GoTrue's mail to Inbucket (Mailpit), where a developer reads
the code or clicks the link. Here ``POST /otp`` (and the older ``/magiclink``),
``/recover`` and ``/resend`` make the same one-time tokens as ``admin/generate_link``
and put the message in ``auth.carbook_mail``, a table the service roles cannot read;
``carbook stack mail`` (``carbook_stack.mailbox``) shows it. The replies are GoTrue's:
``{}`` once the message is "sent", and no word on whether an address has an account
where GoTrue gives none (``/recover``, ``/resend``).
"""

from __future__ import annotations

from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..service import AppState
from .http import AuthError, json_body
from .links import allowed_redirect, issue_token
from .users import check_email, check_metadata, fetch_user, insert_user, is_banned

__all__ = ["SUBJECTS", "magiclink", "otp", "prepare", "recover", "resend"]

#: GoTrue's default subject for each kind of message.
SUBJECTS = {
    "signup": "Confirm Your Signup",
    "magiclink": "Your Magic Link",
    "recovery": "Reset Your Password",
}

_TABLE = """
create table if not exists auth.carbook_mail (
  id bigint generated always as identity primary key,
  recipient text not null,
  kind text not null,
  subject text not null,
  otp text not null,
  action_link text not null,
  redirect_to text not null,
  created_at timestamptz not null default now()
);
create index if not exists carbook_mail_recipient on auth.carbook_mail (lower(recipient), created_at desc);
alter table auth.carbook_mail enable row level security;
revoke all on auth.carbook_mail from anon, authenticated, service_role;
"""


async def prepare(conn: psycopg.AsyncConnection[Any]) -> None:
    """Create the mailbox if the database has none (idempotent)."""
    await conn.execute(_TABLE)


async def _send(
    conn: psycopg.AsyncConnection[Any], state: AppState, user: dict[str, Any], kind: str, redirect: str
) -> None:
    """A new token of ``kind`` for the user and its message in the mailbox, together."""
    async with conn.transaction():
        issued = await issue_token(conn, state, user["id"], kind, user["email"], None, redirect)
        await conn.execute(
            """insert into auth.carbook_mail (recipient, kind, subject, otp, action_link, redirect_to)
               values (%s, %s, %s, %s, %s, %s)""",
            (user["email"], kind, SUBJECTS[kind], issued.otp, issued.link, redirect),
        )


def _address(body: dict[str, Any]) -> str:
    if body.get("phone") and not body.get("email"):
        raise AuthError(400, "sms_send_failed", "The local stack sends no SMS: sign in with an email address")
    return check_email(body.get("email"))


def _redirect(request: Request, state: AppState, body: dict[str, Any]) -> str:
    options = body.get("options")
    options = options if isinstance(options, dict) else {}
    given = (
        request.query_params.get("redirect_to") or body.get("redirect_to") or options.get("email_redirect_to")
    )
    return allowed_redirect(state, given)


async def otp(request: Request, state: AppState) -> Response:
    """``POST /otp``: a code and a magic link by mail; an unknown address is signed up
    first (unless ``create_user`` is false, or sign-ups are off)."""
    body = await json_body(request)
    email = _address(body)
    create = body.get("create_user", True)
    if not isinstance(create, bool):
        raise AuthError(400, "validation_failed", "create_user must be true or false")
    data = check_metadata(body.get("data"), "data")
    redirect = _redirect(request, state, body)
    async with state.connection() as conn, conn.transaction():  # a new user and its mail, or neither
        user = await fetch_user(conn, "lower(email) = %s", email)
        if user is None:
            if not create:
                raise AuthError(422, "otp_disabled", "Signups not allowed for otp")
            if not state.settings.enable_signup:
                raise AuthError(422, "signup_disabled", "Signups not allowed for this instance")
            user = await insert_user(
                conn,
                email=email,
                password_hash=None,
                confirmed=False,
                app_metadata={},
                user_metadata=data,
                identity_data=data,
            )
        if is_banned(user):
            raise AuthError(403, "user_banned", "User is banned")
        kind = "magiclink" if user["email_confirmed_at"] is not None else "signup"
        await _send(conn, state, user, kind, redirect)
    return JSONResponse({})


async def magiclink(request: Request, state: AppState) -> Response:
    """``POST /magiclink``: GoTrue's older name for ``/otp`` by email."""
    return await otp(request, state)


async def recover(request: Request, state: AppState) -> Response:
    """``POST /recover``: a password-reset message, when the address has an account."""
    body = await json_body(request)
    email = _address(body)
    redirect = _redirect(request, state, body)
    async with state.connection() as conn:
        user = await fetch_user(conn, "lower(email) = %s", email)
        if user is not None and not is_banned(user):
            await _send(conn, state, user, "recovery", redirect)
    return JSONResponse({})


async def resend(request: Request, state: AppState) -> Response:
    """``POST /resend``: the sign-up confirmation again, while the address is unconfirmed."""
    body = await json_body(request)
    kind = body.get("type")
    if kind != "signup":
        reason = (
            "email changes take effect at once on the local stack: there is nothing to resend"
            if kind == "email_change"
            else "the local stack sends no SMS"
            if kind in ("sms", "phone_change")
            else f"unsupported resend type {kind!r}: use signup"
        )
        raise AuthError(400, "validation_failed", reason)
    email = _address(body)
    redirect = _redirect(request, state, body)
    async with state.connection() as conn:
        user = await fetch_user(conn, "lower(email) = %s", email)
        if user is not None and user["email_confirmed_at"] is None and not is_banned(user):
            await _send(conn, state, user, "signup", redirect)
    return JSONResponse({})  # the same whether or not the address has an account
