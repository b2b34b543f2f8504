"""Who a channel's subscriber is, and what the database lets them read and write.

Tokens are checked as Supabase Realtime checks them (its messages, with its error codes
in front), and private channels are authorized as Realtime does: RLS policies on
``realtime.messages`` decide, judged under the subscriber's role and claims in a
transaction that is rolled back.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg
from psycopg_pool import AsyncConnectionPool

from ..tokens import API_ROLES, KeySet, TokenError

__all__ = ["AccessError", "Grant", "Token", "authorize", "can_write", "check_token"]


class AccessError(Exception):
    """A refusal, with Realtime's error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Token:
    raw: str
    claims: dict[str, Any]

    @property
    def role(self) -> str:
        return str(self.claims["role"])

    @property
    def expires_in(self) -> float:
        return float(self.claims["exp"]) - time.time()


@dataclass(frozen=True)
class Grant:
    """What RLS on ``realtime.messages`` lets a subscriber read on a private topic."""

    broadcast: bool
    presence: bool


def check_token(raw: object, keys: KeySet) -> Token:
    """A valid, unexpired token with ``role`` and ``exp``.

    Raises:
        AccessError: Realtime's ``MalformedJWT``, ``JwtSignatureError`` or ``InvalidJWTToken``.
    """
    if not isinstance(raw, str) or raw.count(".") != 2:
        raise AccessError("MalformedJWT", "The token provided is not a valid JWT")
    try:
        claims = keys.verify(raw)
    except TokenError as exc:
        if str(exc) == "token has expired":
            # The signature was good (it is checked first): say how long ago, as Realtime does.
            exp = jwt.decode(raw, options={"verify_signature": False}).get("exp", 0)
            raise AccessError(
                "InvalidJWTToken", f"Token has expired {int(time.time() - exp)} seconds ago"
            ) from None
        if "required" in str(exc):
            raise AccessError("InvalidJWTToken", "Fields `role` and `exp` are required in JWT") from None
        try:
            jwt.get_unverified_header(raw)
        except jwt.PyJWTError:
            raise AccessError("MalformedJWT", "The token provided is not a valid JWT") from None
        raise AccessError("JwtSignatureError", "Failed to validate JWT signature") from None
    if not isinstance(claims.get("exp"), int | float) or "role" not in claims:
        raise AccessError("InvalidJWTToken", "Fields `role` and `exp` are required in JWT")
    if claims["role"] not in API_ROLES:
        # Never `set role` to whatever a token names (a token minted with the JWT secret
        # could name a superuser): only the API roles run queries.
        raise AccessError("Unauthorized", f"The role {claims['role']!r} may not use Realtime")
    return Token(raw, claims)


async def _as_subscriber(conn: psycopg.AsyncConnection[Any], token: Token, topic: str) -> None:
    claims = token.claims
    await conn.execute(
        """select set_config('role', %s, true), set_config('realtime.topic', %s, true),
                  set_config('request.jwt.claims', %s, true),
                  set_config('request.jwt.claim.sub', %s, true),
                  set_config('request.jwt.claim.role', %s, true)""",
        (token.role, topic, json.dumps(claims), str(claims.get("sub") or ""), token.role),
    )


class _Rollback(Exception):
    pass


async def authorize(pool: AsyncConnectionPool[Any], token: Token, topic: str) -> Grant:
    """What the subscriber may read on the private ``topic``: a message per extension is
    written as the platform, then selected as the subscriber, and all of it rolled back.

    Raises:
        AccessError: the database could not be asked (``UnableToConnectToProject``).
    """
    try:
        async with pool.connection() as conn:
            try:
                async with conn.transaction():
                    cur = await conn.execute(
                        """insert into realtime.messages (topic, extension)
                           values (%s, 'broadcast'), (%s, 'presence') returning id""",
                        (topic, topic),
                    )
                    ids = [r[0] for r in await cur.fetchall()]
                    await _as_subscriber(conn, token, topic)
                    cur = await conn.execute(
                        "select extension from realtime.messages where id = any(%s)", (ids,)
                    )
                    seen = {r[0] for r in await cur.fetchall()}
                    raise _Rollback
            except _Rollback:
                pass
            except psycopg.errors.InsufficientPrivilege:
                seen = set()
    except (psycopg.OperationalError, TimeoutError) as exc:
        raise AccessError(
            "UnableToConnectToProject", "Realtime was unable to connect to the project database"
        ) from exc
    return Grant(broadcast="broadcast" in seen, presence="presence" in seen)


async def can_write(pool: AsyncConnectionPool[Any], token: Token, topic: str, extension: str) -> bool:
    """Whether RLS lets the subscriber write a message of ``extension`` on ``topic``."""
    try:
        async with pool.connection() as conn:
            try:
                async with conn.transaction():
                    await _as_subscriber(conn, token, topic)
                    await conn.execute(
                        "insert into realtime.messages (topic, extension) values (%s, %s)", (topic, extension)
                    )
                    raise _Rollback
            except _Rollback:
                return True
            except psycopg.errors.InsufficientPrivilege:
                return False
    except (psycopg.OperationalError, TimeoutError):
        return False
