"""JWTs of the local stack: HS256 with the project's secret, as Supabase issues them."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

__all__ = ["Caller", "TokenError", "issue_access_token", "verify_token"]

API_ROLES = frozenset({"anon", "authenticated", "service_role"})


class TokenError(Exception):
    """The bearer token is missing, malformed, forged or expired."""


@dataclass(frozen=True)
class Caller:
    """Who a request comes from, by its verified JWT."""

    role: str
    claims: dict[str, Any]
    token: str

    @property
    def user_id(self) -> str | None:
        sub = self.claims.get("sub")
        return str(sub) if sub else None

    @property
    def is_service_role(self) -> bool:
        return self.role == "service_role"


def verify_token(token: str, secret: str) -> Caller:
    """Verify an HS256 token (signature, expiry) and return its caller.

    Only HS256 is accepted: ``alg: none`` and every other algorithm are refused.

    Raises:
        TokenError: with a GoTrue-like reason.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["exp", "role"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token has expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError(f"unable to parse or verify signature, {exc}") from exc
    role = claims.get("role")
    if role not in API_ROLES:
        raise TokenError(f"role {role!r} is not an API role")
    return Caller(role=str(role), claims=claims, token=token)


def issue_access_token(
    *,
    secret: str,
    user: dict[str, Any],
    session_id: str,
    expires_in: int,
    issuer: str,
    now: int | None = None,
) -> tuple[str, int]:
    """A user's access token with the claims GoTrue puts in it. Returns (token, exp)."""
    iat = now if now is not None else int(time.time())
    exp = iat + expires_in
    anonymous = bool(user.get("is_anonymous"))
    claims = {
        "iss": issuer,
        "sub": str(user["id"]),
        "aud": "authenticated",
        "exp": exp,
        "iat": iat,
        "email": user.get("email") or "",
        "phone": "",
        "app_metadata": user.get("app_metadata") or {},
        "user_metadata": user.get("user_metadata") or {},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "anonymous" if anonymous else "password", "timestamp": iat}],
        "session_id": session_id,
        "is_anonymous": anonymous,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, secret, algorithm="HS256"), exp
