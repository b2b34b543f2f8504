"""JWTs of the local stack, as today's Supabase issues and checks them.

- User access tokens are signed with an asymmetric key (ES256, or RS256) carrying a
  ``kid`` header: the Supabase CLI's well-known local signing key, or the keys of
  ``[auth] signing_keys_path``; the public halves are served at
  ``/auth/v1/.well-known/jwks.json``.
- HS256 tokens signed with the project's JWT secret (the legacy anon/service_role keys,
  tokens minted with the secret) keep working.

A token is verified by its header: HS256 against the secret only, ES256/RS256 against
the key its ``kid`` names, and only with that key's own algorithm — so no header can
make a public key act as an HMAC secret, or pick a key of another kind.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

__all__ = [
    "LOCAL_SIGNING_KEY",
    "Caller",
    "KeySet",
    "TokenError",
    "issue_access_token",
    "load_signing_keys",
    "verify_token",
]

API_ROLES = frozenset({"anon", "authenticated", "service_role"})
#: The algorithms a signing key may have (those GoTrue signs with).
ASYMMETRIC = frozenset({"ES256", "RS256"})
#: The fields of a JWK that are public, by key type; ``d``, ``p``, ``q``… never leave.
_PUBLIC_FIELDS = {"EC": ("kty", "crv", "x", "y"), "RSA": ("kty", "n", "e")}

#: The Supabase CLI's well-known local signing key (public by design, like its JWT secret).
LOCAL_SIGNING_KEY: dict[str, str] = {
    "kty": "EC",
    "crv": "P-256",
    "alg": "ES256",
    "kid": "b81269f1-21d8-4f2e-b719-c2240a840d90",
    "x": "M5Sjqn5zwC9Kl1zVfUUGvv9boQjCGd45G8sdopBExB4",
    "y": "P6IXMvA2WYXSHSOMTBH2jsw_9rrzGy89FjPf6oOsIxQ",
    "d": "dIhR8wywJlqlua4y_yMq2SLhlFXDZJBCvFrY1DCHyVU",
}


class TokenError(Exception):
    """The bearer token is missing, malformed, forged or expired."""


class SigningKeyError(ValueError):
    """A signing key file or key is unusable; the message names the problem."""


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


def _checked_jwk(jwk: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A private signing JWK, checked: a known type and algorithm, a ``kid``, and a key
    PyJWT can load."""
    if not isinstance(jwk, Mapping):
        raise SigningKeyError(f"{where}: a key must be a JSON object (a JWK)")
    alg, kty, kid = jwk.get("alg"), jwk.get("kty"), jwk.get("kid")
    if alg not in ASYMMETRIC:
        raise SigningKeyError(f"{where}: alg must be ES256 or RS256, not {alg!r}")
    if kty != ("EC" if alg == "ES256" else "RSA"):
        raise SigningKeyError(f"{where}: kty {kty!r} does not fit alg {alg}")
    if not isinstance(kid, str) or not kid:
        raise SigningKeyError(f"{where}: every key needs a kid")
    if "d" not in jwk:
        raise SigningKeyError(f"{where}: key {kid} is a public key; signing needs the private one")
    try:
        jwt.PyJWK(dict(jwk))
    except jwt.PyJWTError as exc:
        raise SigningKeyError(f"{where}: key {kid} is not a valid {alg} key ({exc})") from None
    return dict(jwk)


def load_signing_keys(path: Path) -> tuple[dict[str, Any], ...]:
    """The private JWKs of a Supabase CLI signing key file (a JSON array; the first signs).

    Raises:
        SigningKeyError: unreadable, not an array of keys, or a key is unusable.
    """
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise SigningKeyError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise SigningKeyError(f"{path} is not valid JSON") from None
    if isinstance(data, dict) and "keys" in data:
        data = data["keys"]  # a JWK set, as some tools write it
    if not isinstance(data, list) or not data:
        raise SigningKeyError(f"{path} must hold a JSON array of private JWKs")
    keys = tuple(_checked_jwk(k, f"{path}, key {i + 1}") for i, k in enumerate(data))
    kids = [k["kid"] for k in keys]
    if len(set(kids)) != len(kids):
        raise SigningKeyError(f"{path}: two keys share a kid")
    return keys


def _public(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """The public half of a JWK, as GoTrue's JWKS endpoint publishes it."""
    public = {k: jwk[k] for k in _PUBLIC_FIELDS[str(jwk["kty"])] if k in jwk}
    public.update(kid=jwk["kid"], alg=jwk["alg"], use="sig", key_ops=["verify"], ext=True)
    return public


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class KeySet:
    """The keys a stack signs and verifies with: its JWT secret (HS256) and its signing
    keys (private JWKs; the first signs, all verify)."""

    secret: str
    signing_keys: tuple[dict[str, Any], ...] = (LOCAL_SIGNING_KEY,)
    _verifiers: dict[str, tuple[str, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _signer: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.signing_keys:
            raise SigningKeyError("at least one signing key is needed")
        for jwk in self.signing_keys:
            self._verifiers[str(jwk["kid"])] = (str(jwk["alg"]), jwt.PyJWK(_public(jwk)).key)
        object.__setattr__(self, "_signer", jwt.PyJWK(dict(self.signing_keys[0])).key)

    @classmethod
    def of(cls, secret: str, signing_keys: Iterable[Mapping[str, Any]] = ()) -> KeySet:
        keys = tuple(dict(k) for k in signing_keys) or (LOCAL_SIGNING_KEY,)
        return cls(secret=secret, signing_keys=keys)

    @property
    def kid(self) -> str:
        return str(self.signing_keys[0]["kid"])

    def jwks(self) -> dict[str, Any]:
        """The public JWK set (``/auth/v1/.well-known/jwks.json``): never a private part."""
        return {"keys": [_public(k) for k in self.signing_keys]}

    def postgrest_secret(self) -> str:
        """``PGRST_JWT_SECRET``: the public keys plus the JWT secret as an ``oct`` key, so
        PostgREST accepts user tokens and the legacy HS256 keys alike."""
        keys = [_public(k) for k in self.signing_keys]
        keys.append({"kty": "oct", "k": _b64url(self.secret.encode()), "alg": "HS256"})
        return json.dumps({"keys": keys}, separators=(",", ":"))

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(
            dict(claims),
            self._signer,
            algorithm=str(self.signing_keys[0]["alg"]),
            headers={"kid": self.kid, "typ": "JWT"},
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token this key set signed (or the secret did).

        Raises:
            TokenError: with a GoTrue-like reason.
        """
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, RecursionError):
            raise TokenError(MALFORMED) from None
        alg = header.get("alg")
        if not isinstance(alg, str):  # the header is unsigned: anyone may put a list there
            raise TokenError(MALFORMED)
        if alg == "HS256":
            key: Any = self.secret
        elif alg in ASYMMETRIC:
            found = self._verifiers.get(str(header.get("kid")))
            if found is None:
                raise TokenError(
                    "unable to parse or verify signature, no signing key matches the token's kid"
                )
            key_alg, key = found
            if key_alg != alg:
                raise TokenError(
                    f"unable to parse or verify signature, the key {header.get('kid')} is not {alg}"
                )
        else:
            raise TokenError(f"unable to parse or verify signature, signing method {alg} is invalid")
        # An HS256 token may come without ``exp`` (a service token minted with the secret,
        # as supabase-py's own tests mint them): GoTrue, PostgREST and Storage take it.
        # Whenever ``exp`` is there it is enforced; the user tokens Auth signs always have it.
        required = ["role"] if alg == "HS256" else ["exp", "role"]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[str(alg)],
                options={"require": required, "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("token has expired") from exc
        except jwt.InvalidSignatureError:
            raise TokenError("unable to parse or verify signature, token signature is invalid") from None
        except (jwt.DecodeError, RecursionError):
            # PyJWT's own words here quote Python's codecs ("'utf-8' codec can't decode…").
            raise TokenError(MALFORMED) from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"unable to parse or verify signature, {exc}") from exc
        _check_claims(claims)
        return claims


#: What a token that is not a JWT at all is told (GoTrue: "token is malformed: …").
MALFORMED = "unable to parse or verify signature, token is malformed"
#: Claims every reader takes as text (GoTrue decodes them into strings): any other JSON
#: type makes the token malformed, not a role or a user id to look up.
_TEXT_CLAIMS = ("role", "sub", "session_id", "email", "phone", "iss")


def _check_claims(claims: dict[str, Any]) -> None:
    """Refuse claims no service can use: a text claim that is not text, and any string
    holding a NUL or an unpaired surrogate (the database stores neither, and a claim is
    handed to it as ``request.jwt.claims``).

    Raises:
        TokenError: naming the claim.
    """
    for name in _TEXT_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            raise TokenError(f"unable to parse or verify signature, the {name} claim must be a string")
    todo: list[Any] = [claims]
    while todo:  # by hand, not recursion: a payload may nest deeper than Python recurses
        value = todo.pop()
        if isinstance(value, dict):
            todo.extend(value.keys())
            todo.extend(value.values())
        elif isinstance(value, list):
            todo.extend(value)
        elif isinstance(value, str) and ("\x00" in value or _SURROGATE.search(value)):
            raise TokenError(
                "unable to parse or verify signature, a claim holds a NUL or an unpaired surrogate character"
            )


_SURROGATE = re.compile("[\ud800-\udfff]")


def verify_token(token: str, keys: KeySet) -> Caller:
    """Verify a token (signature by its ``alg``/``kid``, expiry) and return its caller.

    Raises:
        TokenError: with a GoTrue-like reason.
    """
    claims = keys.verify(token)
    role = claims.get("role")
    if role not in API_ROLES:
        raise TokenError(f"role {role!r} is not an API role")
    return Caller(role=str(role), claims=claims, token=token)


def issue_access_token(
    *,
    keys: KeySet,
    user: dict[str, Any],
    session_id: str,
    expires_in: int,
    issuer: str,
    now: int | None = None,
) -> tuple[str, int]:
    """A user's access token with the claims GoTrue puts in it, signed by the first
    signing key. Returns (token, exp)."""
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
    return keys.sign(claims), exp
