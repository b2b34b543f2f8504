"""Email links without mail: ``POST /admin/generate_link`` makes the link and the OTP GoTrue
would send (signup, invite, magic link, recovery, email change), and ``GET``/``POST
/verify`` spends them, as GoTrue does: confirming the user, changing the address, and
signing the user in (``POST``: the session as JSON; ``GET``: a 303 to the redirect URL
with the tokens in its fragment, the implicit flow).

Tokens are GoTrue's: a 6-digit OTP, and its hash (SHA-224 of the address and the OTP,
hex) in the link. Each is good once, for ``OTP_EXPIRY`` seconds, and only the newest of
its kind per user counts. They live in ``auth.carbook_one_time_tokens``, which the app
creates on start as GoTrue migrates its own tables (``prepare``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..service import AppState
from .admin import admin_caller
from .http import AuthError, json_body
from .sessions import new_session
from .users import (
    check_email,
    check_metadata,
    check_password,
    fetch_user,
    hash_password,
    insert_user,
    is_banned,
    user_json,
)

__all__ = ["OTP_EXPIRY", "Issued", "allowed_redirect", "generate_link", "issue_token", "prepare", "verify"]

#: Seconds a link or OTP stays good (the Supabase CLI's ``[auth.email] otp_expiry``).
OTP_EXPIRY = 3600
#: What a link's token is (``token_hash``: a SHA-224 in hex).
_HASH = re.compile(r"[0-9a-f]{56}")
#: The link types ``generate_link`` makes, and the ``type`` their link and OTP verify as.
LINK_TYPES = {
    "signup": "signup",
    "invite": "invite",
    "magiclink": "magiclink",
    "recovery": "recovery",
    "email_change_current": "email_change",
    "email_change_new": "email_change",
}
#: The ``type`` of a verification, and the kinds of token it may spend ("email" is an
#: OTP from a sign-up or a magic link, as GoTrue reads it).
VERIFIES = {
    "signup": ("signup", "invite"),
    "invite": ("signup", "invite"),
    "magiclink": ("magiclink", "recovery"),
    "recovery": ("magiclink", "recovery"),
    "email": ("signup", "invite", "magiclink", "recovery"),
    "email_change": ("email_change_current", "email_change_new"),
}
EXPIRED_LINK = "Email link is invalid or has expired"
EXPIRED_OTP = "Token has expired or is invalid"

_TABLE = """
create table if not exists auth.carbook_one_time_tokens (
  token_hash text primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  kind text not null check (kind in ('signup', 'invite', 'magiclink', 'recovery',
                                     'email_change_current', 'email_change_new')),
  email text not null,
  new_email text,
  created_at timestamptz not null default now(),
  unique (user_id, kind)
);
alter table auth.carbook_one_time_tokens enable row level security;
revoke all on auth.carbook_one_time_tokens from anon, authenticated, service_role;
"""


async def prepare(conn: psycopg.AsyncConnection[Any]) -> None:
    """Create the table of one-time tokens if the database has none (idempotent)."""
    await conn.execute(_TABLE)


def token_hash(address: str, otp: str) -> str:
    """GoTrue's hash of an OTP for an address: what a link carries."""
    return hashlib.sha224((address + otp).encode()).hexdigest()


def _redirect_to(request: Request, state: AppState, body: dict[str, Any]) -> str:
    return allowed_redirect(state, request.query_params.get("redirect_to") or body.get("redirect_to"))


def allowed_redirect(state: AppState, given: object) -> str:
    """Where a link may lead, as GoTrue decides (its ``IsRedirectURLValid``): ``given``
    when it is the site (scheme, host, and port unless the host is loopback), a loopback
    address, or it matches ``[auth] additional_redirect_urls`` (fragment aside) with a
    host a browser reads the same way; else the site URL. A link carries the session in
    its fragment, so it never leads anywhere else."""
    site = state.settings.site_url
    if not isinstance(given, str) or not given.isascii() or _UNSAFE.search(given):
        # A backslash reads as "/" in a browser but not here: http://evil\@site/ would
        # pass as the site's host and take the browser to evil (Go's parser refuses it).
        return site
    try:
        url, home = urlsplit(given), urlsplit(site)
        host, same_port = url.hostname or "", url.port == home.port
    except ValueError:
        return site
    if host and host == home.hostname and url.scheme == home.scheme and (same_port or _loopback(host)):
        return given
    if host.isdigit():  # an IPv4 address written as one number: no allow-list names it
        return site
    if _ip(host) is not None:
        return given if _loopback(host) else site
    if url.scheme in ("http", "https") and not _HOSTNAME.fullmatch(host):
        return site
    bare = given.split("#", 1)[0]
    if any(_glob(pattern).fullmatch(bare) for pattern in state.settings.additional_redirect_urls):
        return given
    return site


#: What a URL a browser is sent to never holds unescaped (nor an empty one).
_UNSAFE = re.compile(r'^$|[\x00-\x20\x7f\\<>"{}|^`]')
#: A host name as people register them (GoTrue refuses any other for http and https).
_HOSTNAME = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?")
#: What one ``*`` or ``?`` of a pattern never stands for: a separator (``.``, ``/``) or a
#: character that would end the host in a browser's reading.
_NOT_IN_STAR = r"[^./?#@:]"


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _loopback(host: str) -> bool:
    ip = _ip(host)
    return host == "localhost" if ip is None else ip.is_loopback


def _glob(pattern: str) -> re.Pattern[str]:
    """An allow-list pattern as GoTrue reads it (gobwas/glob, ``.`` and ``/`` separators):
    ``*`` and ``?`` within a part, ``**`` across parts, ``[a-z]``/``[!a]``, ``{a,b}``,
    ``\\`` escaping the next character. What it cannot read matches nothing new."""
    return re.compile(_glob_source(pattern))


def _glob_source(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        close = pattern.find({"[": "]", "{": "}"}.get(c, ""), i + 1) if c in "[{" else -1
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append(_NOT_IN_STAR + "*")
        elif c == "?":
            out.append(_NOT_IN_STAR)
        elif c == "[" and close > i + 1:
            body = pattern[i + 1 : close]
            negate = body.startswith("!")
            chars = "".join(ch if ch == "-" else re.escape(ch) for ch in body.removeprefix("!"))
            out.append(f"[{'^' if negate else ''}{chars}]")
            i = close
        elif c == "{" and close > i:
            out.append("(?:" + "|".join(_glob_source(a) for a in pattern[i + 1 : close].split(",")) + ")")
            i = close
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


async def generate_link(request: Request, state: AppState) -> Response:
    admin_caller(request, state)
    body = await json_body(request)
    requested = kind = body.get("type")
    email = check_email(body.get("email"))
    redirect = _redirect_to(request, state, body)
    if kind not in LINK_TYPES:
        raise AuthError(400, "validation_failed", f"Invalid email action link type requested: {kind}")
    data = check_metadata(body.get("data"), "data")
    new_email = check_email(body.get("new_email")) if kind.startswith("email_change") else None
    async with state.connection() as conn:
        user = await fetch_user(conn, "lower(email) = %s", email)
        if user is None and kind in ("recovery", "email_change_current", "email_change_new"):
            raise AuthError(404, "user_not_found", "User with this email not found")
        if user is None and kind == "magiclink":
            kind = "signup"  # as GoTrue: a magic link for a stranger signs them up
        if user is not None and kind in ("signup", "invite") and user["email_confirmed_at"] is not None:
            raise AuthError(422, "email_exists", "A user with this email address has already been registered")
        if user is None:
            password = body.get("password")
            if requested == "magiclink":
                password = secrets.token_urlsafe(48)[:64]
            hashed = await hash_password(check_password(state, password)) if kind == "signup" else None
            user = await insert_user(
                conn,
                email=email,
                password_hash=hashed,
                confirmed=False,
                app_metadata={},
                user_metadata=data,
                identity_data=data,
            )
        elif data and kind == "signup":
            await conn.execute(
                "update auth.users set raw_user_meta_data = raw_user_meta_data || %s where id = %s",
                (Jsonb(data), user["id"]),
            )
        if new_email is not None:
            cur = await conn.execute(
                "select 1 from auth.users where lower(email) = %s and id <> %s", (new_email, user["id"])
            )
            if await cur.fetchone() is not None:
                raise AuthError(
                    422, "email_exists", "A user with this email address has already been registered"
                )
        async with conn.transaction():
            issued = await issue_token(conn, state, user["id"], kind, email, new_email, redirect)
        fresh = await fetch_user(conn, "id = %s", user["id"])
    assert fresh is not None
    return JSONResponse(
        {
            **user_json(fresh),
            "action_link": issued.link,
            "email_otp": issued.otp,
            "hashed_token": issued.hashed,
            "verification_type": kind,
            "redirect_to": redirect,
        }
    )


@dataclass(frozen=True)
class Issued:
    """A one-time token as its mail carries it: the code, the hash a link carries, the link."""

    otp: str
    hashed: str
    link: str


async def issue_token(
    conn: psycopg.AsyncConnection[Any],
    state: AppState,
    user_id: Any,
    kind: str,
    email: str,
    new_email: str | None,
    redirect: str,
) -> Issued:
    """A new token of ``kind`` for the user (the previous one of that kind is void), in the
    caller's transaction."""
    otp = f"{secrets.randbelow(10**6):06d}"
    hashed = token_hash(new_email if kind == "email_change_new" and new_email else email, otp)
    await conn.execute(
        "delete from auth.carbook_one_time_tokens where user_id = %s and kind = %s", (user_id, kind)
    )
    await conn.execute(
        """insert into auth.carbook_one_time_tokens (token_hash, user_id, kind, email, new_email)
           values (%s, %s, %s, %s, %s)""",
        (hashed, user_id, kind, new_email if kind == "email_change_new" else email, new_email),
    )
    link = (
        f"{state.settings.api_url}/auth/v1/verify?token={quote(hashed)}"
        f"&type={LINK_TYPES[kind]}&redirect_to={quote(redirect, safe=':/')}"
    )
    return Issued(otp, hashed, link)


async def _spend(
    conn: psycopg.AsyncConnection[Any], vtype: str, hashed: str, message: str
) -> tuple[dict[str, Any], str]:
    """Spend a token of the kinds ``vtype`` verifies: (its row, the kind). Good once."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """delete from auth.carbook_one_time_tokens
                where token_hash = %s and kind = any(%s)
                  and created_at > now() - make_interval(secs => %s)
            returning user_id, kind, email, new_email""",
            (hashed, list(VERIFIES[vtype]), OTP_EXPIRY),
        )
        row = await cur.fetchone()
    if row is None:
        raise AuthError(403, "otp_expired", message)
    return row, row["kind"]


async def _apply(conn: psycopg.AsyncConnection[Any], token: dict[str, Any]) -> dict[str, Any]:
    """What spending the token does to its user: confirmed, and for an email change, the
    new address (its identity follows). Returns the user."""
    user_id = token["user_id"]
    if token["kind"].startswith("email_change"):
        await conn.execute(
            "update auth.users set email = %s, email_confirmed_at = coalesce(email_confirmed_at, now()),"
            " updated_at = now() where id = %s",
            (token["new_email"], user_id),
        )
        await conn.execute(
            "delete from auth.carbook_one_time_tokens where user_id = %s and kind like 'email_change%%'",
            (user_id,),
        )
        patch: dict[str, Any] = {"email": token["new_email"], "email_verified": True}
    else:
        await conn.execute(
            "update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()), updated_at = now()"
            " where id = %s",
            (user_id,),
        )
        patch = {"email_verified": True}
    await conn.execute(
        "update auth.identities set identity_data = identity_data || %s, updated_at = now()"
        " where user_id = %s and provider = 'email'",
        (Jsonb(patch), user_id),
    )
    user = await fetch_user(conn, "id = %s", user_id)
    if user is None:
        raise AuthError(404, "user_not_found", "User not found")
    if is_banned(user):  # raised inside the caller's transaction: the token stays unspent
        raise AuthError(403, "user_banned", "User is banned")
    return user


async def verify(request: Request, state: AppState) -> Response:
    if request.method == "GET":
        return await _verify_link(request, state)
    body = await json_body(request)
    vtype, token, hashed = body.get("type"), body.get("token"), body.get("token_hash")
    if not isinstance(vtype, str) or not vtype:
        raise AuthError(400, "validation_failed", "Verify requires a verification type")
    if vtype not in VERIFIES:
        raise AuthError(400, "validation_failed", "Unsupported verification type")
    if bool(token) == bool(hashed) or not isinstance(token or hashed, str):
        raise AuthError(400, "validation_failed", "Verify requires either a token or a token hash")
    if token:
        email = check_email(body.get("email"))
        hashed, message = token_hash(email, str(token)), EXPIRED_OTP
    else:
        message = EXPIRED_LINK
        if not _HASH.fullmatch(str(hashed)):
            raise AuthError(403, "otp_expired", message)
    async with state.connection() as conn:
        async with conn.transaction():
            spent, _ = await _spend(conn, vtype, str(hashed), message)
            user = await _apply(conn, spent)
        return JSONResponse(await new_session(state, conn, user))


async def _verify_link(request: Request, state: AppState) -> Response:
    """A link from an email: a 303 to ``redirect_to`` with the session (or the error) in
    the fragment, as GoTrue's implicit flow answers."""
    q = request.query_params
    vtype, hashed = q.get("type") or "", q.get("token") or ""
    redirect = allowed_redirect(state, q.get("redirect_to"))
    if not vtype:
        raise AuthError(400, "validation_failed", "Verify requires a verification type")
    if not hashed:
        raise AuthError(400, "validation_failed", "Verify requires a token or a token hash")
    if vtype not in VERIFIES or vtype == "email":
        raise AuthError(400, "validation_failed", "Unsupported verification type")
    try:
        if not _HASH.fullmatch(hashed):  # no link carries anything else: nothing to look up
            raise AuthError(403, "otp_expired", EXPIRED_LINK)
        async with state.connection() as conn:
            async with conn.transaction():
                spent, _ = await _spend(conn, vtype, hashed, EXPIRED_LINK)
                user = await _apply(conn, spent)
            session = await new_session(state, conn, user)
    except AuthError as err:
        fragment = urlencode(
            {"error": "access_denied", "error_code": err.code, "error_description": err.message, "sb": ""}
        )
        return RedirectResponse(f"{redirect}#{fragment}", status_code=303)
    fragment = urlencode(
        sorted(
            {
                "access_token": session["access_token"],
                "expires_at": str(session["expires_at"]),
                "expires_in": str(session["expires_in"]),
                "refresh_token": session["refresh_token"],
                "sb": "",
                "token_type": session["token_type"],
                "type": vtype,
            }.items()
        )
    )
    return RedirectResponse(f"{redirect}#{fragment}", status_code=303)
