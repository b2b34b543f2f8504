"""Users in ``auth.users``: their JSON shape, the checks on email, password and metadata,
bcrypt hashing, and the statements that read, insert and change a user."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import anyio
import bcrypt
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..service import AppState
from .http import AuthError

__all__ = [
    "MAX_PASSWORD_BYTES",
    "USER_COLUMNS",
    "apply_user_changes",
    "ban_seconds",
    "check_email",
    "check_metadata",
    "check_password",
    "check_role",
    "fetch_user",
    "hash_password",
    "identity_json",
    "insert_user",
    "is_banned",
    "password_matches",
    "user_json",
]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A user's identities come with the user, in one statement, oldest first. A user made
# before carbook kept identities (or by hand) has none and reads as such.
USER_COLUMNS = """id, aud, role, email, email_confirmed_at, last_sign_in_at, raw_app_meta_data,
                  raw_user_meta_data, is_anonymous, banned_until, created_at, updated_at,
                  coalesce((select pg_catalog.jsonb_agg(pg_catalog.to_jsonb(i) order by i.created_at, i.id)
                              from auth.identities i where i.user_id = users.id), '[]') as identities"""
# Compared against when the email is unknown, so both answers take as long.
_DUMMY_HASH = bcrypt.hashpw(b"carbook-timing-equaliser", bcrypt.gensalt(rounds=10))
BCRYPT_ROUNDS = 10
#: What bcrypt hashes of a password: GoTrue refuses a longer new one, and compares only
#: these bytes of one given at sign-in (Go's bcrypt reads no further).
MAX_PASSWORD_BYTES = 72


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def identity_json(row: dict[str, Any]) -> dict[str, Any]:
    """An ``auth.identities`` row as GoTrue shows it: its own key is ``identity_id`` and
    the provider's id for the user is ``id`` (names kept for old clients)."""
    return {
        "identity_id": str(row["id"]),
        "id": row["provider_id"],
        "user_id": str(row["user_id"]),
        "identity_data": row["identity_data"] or {},
        "provider": row["provider"],
        "last_sign_in_at": row["last_sign_in_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        **({"email": row["email"]} if row.get("email") else {}),
    }


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
        "identities": [identity_json(i) for i in row.get("identities") or ()],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "is_anonymous": bool(row["is_anonymous"]),
        **({"banned_until": _iso(row["banned_until"])} if row["banned_until"] else {}),
    }


def check_password(state: AppState, password: Any) -> str:
    """A new password, checked as GoTrue checks it: the length bcrypt can hash first
    (``MAX_PASSWORD_BYTES``, in bytes, as Go counts a string), then the minimum."""
    if not isinstance(password, str) or not password:
        raise AuthError(400, "validation_failed", "Signup requires a valid password")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise AuthError(
            400, "validation_failed", f"Password cannot be longer than {MAX_PASSWORD_BYTES} characters"
        )
    minimum = state.settings.minimum_password_length
    if len(password) < minimum:
        raise AuthError(
            422,
            "weak_password",
            f"Password should be at least {minimum} characters.",
            weak_password={"reasons": ["length"]},
        )
    return password


def check_email(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AuthError(400, "validation_failed", "missing email or phone")
    email = value.strip().lower()
    if not _EMAIL.match(email) or len(email) > 255:
        raise AuthError(400, "validation_failed", "Unable to validate email address: invalid format")
    return email


def check_metadata(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AuthError(400, "validation_failed", f"{name} must be a JSON object")
    return value


async def hash_password(password: str) -> str:
    hashed = await anyio.to_thread.run_sync(
        lambda: bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
    )
    return hashed.decode()


async def password_matches(password: str, stored: str | None) -> bool:
    target = stored.encode() if stored else _DUMMY_HASH
    given = password.encode()[:MAX_PASSWORD_BYTES]
    ok = await anyio.to_thread.run_sync(lambda: bcrypt.checkpw(given, target))
    return ok and stored is not None


async def fetch_user(conn: psycopg.AsyncConnection[Any], where: str, value: Any) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"select {USER_COLUMNS} from auth.users where {where}", (value,))
        return await cur.fetchone()


async def insert_user(
    conn: psycopg.AsyncConnection[Any],
    *,
    email: str | None,
    password_hash: str | None,
    confirmed: bool,
    app_metadata: dict[str, Any],
    user_metadata: dict[str, Any],
    user_id: uuid.UUID | None = None,
    duplicate_code: str = "user_already_exists",
    identity_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Insert a user and, with an email, their ``email`` identity, in one transaction.

    Without an email the user is anonymous, as GoTrue makes them: no provider in
    ``app_metadata``, no identity. ``identity_data`` adds keys to the identity's own
    (``sub``, ``email``, ``email_verified``, ``phone_verified``) without replacing them.
    """
    anonymous = email is None
    app_meta = app_metadata if anonymous else {"provider": "email", "providers": ["email"], **app_metadata}
    try:
        async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                """insert into auth.users (id, email, encrypted_password, email_confirmed_at,
                                           raw_app_meta_data, raw_user_meta_data, is_anonymous)
                   values (coalesce(%s, gen_random_uuid()), %s, %s,
                           case when %s then now() end, %s, %s, %s)
                   returning id""",
                (user_id, email, password_hash, confirmed, Jsonb(app_meta), Jsonb(user_metadata), anonymous),
            )
            created = await cur.fetchone()
            assert created is not None
            if not anonymous:
                # GoTrue's email identity: the provider's id for the user is the user's id,
                # and neither address is verified yet as far as the identity knows.
                own = {
                    "sub": str(created["id"]),
                    "email": email,
                    "email_verified": False,
                    "phone_verified": False,
                }
                await cur.execute(
                    """insert into auth.identities (provider_id, user_id, identity_data, provider,
                                                    last_sign_in_at, created_at, updated_at)
                       values (%s, %s, %s, 'email', now(), now(), now())""",
                    (str(created["id"]), created["id"], Jsonb({**(identity_data or {}), **own})),
                )
            await cur.execute(f"select {USER_COLUMNS} from auth.users where id = %s", (created["id"],))
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        if duplicate_code == "email_exists":
            raise AuthError(
                422, "email_exists", "A user with this email address has already been registered"
            ) from None
        raise AuthError(422, "user_already_exists", "User already registered") from None
    assert row is not None
    return row


#: Go's duration units in seconds: GoTrue reads ``ban_duration`` with time.ParseDuration.
_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_PART = re.compile("([0-9]+[.]?[0-9]*|[.][0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
#: Go's longest Duration, in seconds (about 292 years).
_GO_MAX = (2**63 - 1) / 1e9


def ban_seconds(value: Any) -> float | None:
    """``ban_duration`` as GoTrue reads it: ``"none"`` (None: lift the ban) or a Go
    duration ("24h", "1h30m", "90s"), in seconds.

    Raises:
        AuthError: anything else, with GoTrue's 400.
    """
    if not isinstance(value, str):
        raise AuthError(400, "validation_failed", "ban_duration must be a string such as 24h, or none")
    if value == "none":
        return None
    sign, text = (-1.0, value[1:]) if value.startswith("-") else (1.0, value.removeprefix("+"))
    total, at = 0.0, 0
    for part in _GO_PART.finditer(text):
        if part.start() != at:
            break
        total += float(part[1]) * _GO_UNITS[part[2]]
        at = part.end()
    if text != "0" and (not text or at != len(text) or total > _GO_MAX):
        shown = value if len(value) <= 64 else value[:64] + "…"
        raise AuthError(
            400, "validation_failed", f'invalid format for ban duration: time: invalid duration "{shown}"'
        )
    return sign * total


def check_role(value: Any) -> None:
    """A ``role`` an admin sends: every user of the local stack is ``authenticated``, so
    only that is taken; another is refused rather than ignored.

    Raises:
        AuthError: 400 for any other role.
    """
    if value is not None and value != "authenticated":
        raise AuthError(
            400,
            "validation_failed",
            "The local stack keeps every user's role authenticated: it cannot set another role",
        )


def is_banned(user: dict[str, Any]) -> bool:
    """Whether the user's ``banned_until`` is still ahead."""
    until = user.get("banned_until")
    return until is not None and until > datetime.now(UTC)


async def apply_user_changes(
    state: AppState, conn: psycopg.AsyncConnection[Any], user_id: Any, body: dict[str, Any], *, admin: bool
) -> dict[str, Any]:
    """Change a user: themselves (``PUT /user``) or by the service role (``PUT /admin/users/{id}``).

    As GoTrue does: an email for a user without an email identity creates one, and an
    anonymous user given a confirmed address becomes a permanent one, by an admin with
    ``email_confirm``, or by themselves when the project confirms no addresses
    (``[auth.email] enable_confirmations = false``). An anonymous user cannot set a
    password without an email.
    """
    current = await fetch_user(conn, "id = %s", user_id)
    if current is None:
        raise AuthError(404, "user_not_found", "User not found")
    new_email = check_email(body["email"]) if body.get("email") is not None else None
    anonymous = bool(current["is_anonymous"])
    if anonymous and body.get("password") is not None and new_email is None and not current["email"]:
        raise AuthError(
            422,
            "validation_failed",
            "Updating password of an anonymous user without an email or phone is not allowed",
        )
    if admin:
        confirm = body.get("email_confirm") is True
    else:
        confirm = anonymous and new_email is not None and not state.settings.enable_confirmations
    made_permanent = anonymous and new_email is not None and confirm
    sets: list[str] = []
    params: list[Any] = []
    if admin:
        check_role(body.get("role"))
        if body.get("ban_duration") not in (None, ""):  # GoTrue: empty is no change
            ban = ban_seconds(body["ban_duration"])
            if ban:
                sets.append("banned_until = now() + make_interval(secs => %s)")
                params.append(ban)
            else:  # "none", or a zero duration: GoTrue's Ban(0) lifts the ban too
                sets.append("banned_until = null")
    if new_email is not None:
        sets.append("email = %s")
        params.append(new_email)
    if "password" in body and body["password"] is not None:
        sets.append("encrypted_password = %s")
        params.append(await hash_password(check_password(state, body["password"])))
    meta_key = "user_metadata" if admin and "user_metadata" in body else "data"
    if body.get(meta_key) is not None:
        sets.append("raw_user_meta_data = raw_user_meta_data || %s")
        params.append(Jsonb(check_metadata(body[meta_key], meta_key)))
    app_patch = check_metadata(body.get("app_metadata"), "app_metadata") if admin else {}
    if app_patch or made_permanent:
        # A user who became permanent signs in with email now, as one who signed up does.
        defaults = {"provider": "email", "providers": ["email"]} if made_permanent else {}
        sets.append("raw_app_meta_data = %s || raw_app_meta_data || %s")
        params.extend((Jsonb(defaults), Jsonb(app_patch)))
    if confirm:
        sets.append("email_confirmed_at = coalesce(email_confirmed_at, now())")
    if made_permanent:
        sets.append("is_anonymous = false")
    sets.append("updated_at = now()")
    try:
        async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"update auth.users set {', '.join(sets)} where id = %s returning id", (*params, user_id)
            )
            row = await cur.fetchone()
            if row is not None:
                if new_email is not None:
                    await _set_email_identity(cur, user_id, new_email, verified=confirm if admin else None)
                await cur.execute(f"select {USER_COLUMNS} from auth.users where id = %s", (user_id,))
                row = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise AuthError(
            422, "email_exists", "A user with this email address has already been registered"
        ) from None
    if row is None:
        raise AuthError(404, "user_not_found", "User not found")
    return row


async def _set_email_identity(
    cur: psycopg.AsyncCursor[Any], user_id: Any, email: str, *, verified: bool | None
) -> None:
    """The email identity follows the address; a user without one (anonymous, or made
    before identities were kept) gets it. ``verified``: what an admin said, if anything."""
    patch: dict[str, Any] = {"email": email}
    if verified is not None:
        patch["email_verified"] = verified
    await cur.execute(
        """update auth.identities set identity_data = identity_data || %s, updated_at = now()
            where user_id = %s and provider = 'email'""",
        (Jsonb(patch), user_id),
    )
    if cur.rowcount == 0:
        own = {"sub": str(user_id), "email": email, "email_verified": bool(verified), "phone_verified": False}
        await cur.execute(
            """insert into auth.identities (provider_id, user_id, identity_data, provider,
                                            last_sign_in_at, created_at, updated_at)
               values (%s, %s, %s, 'email', now(), now(), now())""",
            (str(user_id), user_id, Jsonb(own)),
        )
