"""Verifying a user's access token without asking Auth: what ``as_user`` builds on.

An asymmetric token (ES256, RS256: today's Supabase signing keys) is checked against the
project's published keys (``/auth/v1/.well-known/jwks.json``); a symmetric one (HS256,
the legacy JWT secret) against the secret, when it is configured. No I/O here: the
clients fetch and cache the key set.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidTokenError, ValidationError
from .models import Claims, validated

__all__ = ["ASYMMETRIC", "token_header", "verify_access_token"]

#: Algorithms whose keys the project publishes.
ASYMMETRIC = frozenset({"ES256", "RS256", "EdDSA"})


def token_header(token: Any) -> dict[str, Any]:
    """The token's unverified header (its algorithm and key id).

    Raises:
        InvalidTokenError: not a JWT at all.
    """
    import jwt

    if not isinstance(token, str) or token.count(".") != 2:
        raise InvalidTokenError("not an access token (expected a JWT: three parts separated by dots)")
    try:
        return dict(jwt.get_unverified_header(token))
    except jwt.PyJWTError:
        raise InvalidTokenError("not an access token (its header cannot be read)") from None


def verify_access_token(token: str, *, jwks: dict[str, Any] | None, jwt_secret: str | None) -> Claims:
    """The token's claims, if it is a signed-in user's valid access token for this project.

    ``jwks``: the project's published key set (for asymmetric tokens); ``jwt_secret``: the
    project's JWT secret (for HS256 ones).

    Raises:
        InvalidTokenError: expired, forged (the signature does not verify), signed by a key
            the project does not publish, or not a user's token (an API key, an anon token).
    """
    import jwt

    header = token_header(token)
    alg = str(header.get("alg", ""))
    if alg in ASYMMETRIC:
        keys = [k for k in (jwks or {}).get("keys", []) if isinstance(k, dict)]
        match = [k for k in keys if k.get("kid") == header.get("kid")] if header.get("kid") else keys[:1]
        if not match:
            raise InvalidTokenError("the access token is signed by a key this project does not publish")
        try:
            key: Any = jwt.PyJWK(match[0], algorithm=alg).key
        except jwt.PyJWTError:
            raise InvalidTokenError("the project's published key does not fit the access token") from None
    elif alg == "HS256":
        if not jwt_secret:
            raise InvalidTokenError(
                "the access token is signed with a shared secret (HS256), and no JWT secret is configured",
                hint="set SUPABASE_JWT_SECRET (or pass jwt_secret=) to verify such tokens",
            )
        key = jwt_secret
    else:
        raise InvalidTokenError(f"the access token's algorithm {alg or 'none'} is not accepted")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            options={"require": ["exp", "sub"], "verify_aud": False},
            leeway=5,
        )
    except jwt.ExpiredSignatureError:
        raise InvalidTokenError("the access token has expired: sign in again for a new one") from None
    except jwt.InvalidSignatureError:
        raise InvalidTokenError("the access token's signature does not verify (forged or altered)") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidTokenError(f"not a user's access token (no {exc.claim} claim)") from None
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(f"the access token is not valid ({exc})") from None
    if claims.get("role") != "authenticated":
        raise InvalidTokenError(f"not a signed-in user's access token (role {claims.get('role')!r})")
    try:
        return validated(Claims, claims)
    except ValidationError:
        raise InvalidTokenError("the access token's claims are not a user's") from None
