"""Today's Supabase keys and tokens against the local stack, with the plain supabase-py
client: publishable and secret keys (the gateway turns them into the legacy JWTs),
user tokens signed ES256 and published as a JWKS, and forged tokens refused by every
service — PostgREST, Storage and Auth alike."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from supabase_auth.errors import AuthApiError, AuthInvalidJwtError

from carbook_sdk import Carbook, NotAuthenticatedError, SessionExpiredError
from carbook_sdk.config import load_local_config
from carbook_sdk.errors import ConfigurationError
from carbook_stack.manager import LocalStack
from carbook_stack.settings import StackSettings
from carbook_stack.tokens import LOCAL_SIGNING_KEY
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PNG, supabase_client, unique_email

from ..helpers import make_cars, stack_db, temporary_stack

PASSWORD = "correct-horse-9"
BUCKET = "car-images"
UNPUBLISHED = "7e5a9c7d-4b7d-4f2e-9a63-5d8e7c000007"  # seed: the one unpublished car


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _new_ec_jwk(kid: str) -> dict[str, Any]:
    """A fresh private P-256 JWK, as `supabase gen signing-key` writes one."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key))
    return {**jwk, "kid": kid, "alg": "ES256"}


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": str(uuid.uuid4()), "role": "authenticated", "aud": "authenticated", "iat": now}
    claims["exp"] = now + 600
    return {**claims, **overrides}


def _sign_es256(jwk: dict[str, Any], kid: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, jwt.PyJWK(jwk).key, algorithm="ES256", headers={"kid": kid})


def _alg_switch(secret: str, kid: str, claims: dict[str, Any]) -> str:
    """An ES256 header over an HMAC-SHA256 signature made with the JWT secret."""
    head = _b64(json.dumps({"alg": "ES256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def _booking_state(stack: LocalStack, car: str) -> tuple[Any, ...]:
    with stack_db(stack) as conn:
        row = conn.execute(
            """select c.booking_status, (select count(*) from public.audit_logs a where a.record_id = c.id)
                 from public.cars c where c.id = %s""",
            (car,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def _object_count(stack: LocalStack) -> int:
    with stack_db(stack) as conn:
        row = conn.execute("select count(*) from storage.objects").fetchone()
    assert row is not None
    return int(row[0])


# Keys -----------------------------------------------------------------------------------
def test_code_for_todays_supabase_start_runs_unchanged(stack: LocalStack) -> None:
    """create_client(url, publishable key): sign up, sign in, list cars, book."""
    s = stack.settings
    assert s.publishable_key.startswith("sb_publishable_") and s.secret_key.startswith("sb_secret_")
    (car,) = make_cars(stack, 1, f"keys-{uuid.uuid4().hex[:6]}")
    email = unique_email("publishable")
    client = supabase_client(s.api_url, s.publishable_key)
    assert client.auth.sign_up({"email": email, "password": PASSWORD}).session is not None
    client.auth.sign_out()
    session = client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session
    assert session is not None
    listed = client.table("cars").select("id").eq("id", car).execute().data
    assert listed == [{"id": car}]
    result = client.rpc("book_car_atomic", {"car_id": car}).execute().data
    assert (result["success"], result["code"], result["booked_by"]) == (True, "booked", session.user.id)
    with stack_db(stack) as conn:
        row = conn.execute("select booked_by::text from public.cars where id = %s", (car,)).fetchone()
    assert row == (session.user.id,)


def test_the_secret_key_is_the_service_role_and_the_publishable_key_is_anon(stack: LocalStack) -> None:
    s = stack.settings
    secret = supabase_client(s.api_url, s.secret_key)
    users = secret.auth.admin.list_users(page=1, per_page=5)
    assert 0 < len(users) <= 5 and all(u.id and u.aud for u in users)
    with stack_db(stack) as conn:
        row = conn.execute("select id::text from auth.users where email = %s", (ADMIN_EMAIL,)).fetchone()
    assert row is not None
    assert secret.auth.admin.get_user_by_id(row[0]).user.email == ADMIN_EMAIL
    # The service role sees the unpublished car; the publishable key (anon) does not.
    assert secret.table("cars").select("id").eq("id", UNPUBLISHED).execute().data == [{"id": UNPUBLISHED}]
    public = supabase_client(s.api_url, s.publishable_key)
    assert public.table("cars").select("id").eq("id", UNPUBLISHED).execute().data == []
    with pytest.raises(AuthApiError) as refused:
        public.auth.admin.list_users()
    assert refused.value.status == 403


@pytest.mark.parametrize("where", ["header", "query"])
def test_new_keys_work_as_header_or_query_and_a_bearer_key_is_no_user_token(
    stack: LocalStack, where: str
) -> None:
    s = stack.settings
    url = f"{s.api_url}/rest/v1/cars?select=id&id=eq.{UNPUBLISHED}"
    for key, expected in ((s.secret_key, 1), (s.publishable_key, 0)):
        if where == "header":
            # supabase-py sends the key as a bearer token too: it stands for its JWT, not a user's.
            reply = httpx.get(url, headers={"apikey": key, "Authorization": f"Bearer {key}"})
        else:
            reply = httpx.get(f"{url}&apikey={key}")
        assert reply.status_code == 200, reply.text
        assert len(reply.json()) == expected
    # Storage and Auth take them the same way: the secret key may list every object.
    listed = httpx.post(
        f"{s.api_url}/storage/v1/object/list/{BUCKET}",
        headers={"apikey": s.secret_key, "Authorization": f"Bearer {s.secret_key}"},
        json={"prefix": ""},
    )
    assert listed.status_code == 200, listed.text


def test_an_unknown_new_style_key_is_refused_everywhere(stack: LocalStack) -> None:
    s = stack.settings
    fake = "sb_secret_" + "x" * 26
    for path in ("/rest/v1/cars?select=id", "/auth/v1/admin/users", "/storage/v1/bucket"):
        reply = httpx.get(f"{s.api_url}{path}", headers={"apikey": fake, "Authorization": f"Bearer {fake}"})
        assert (reply.status_code, reply.json()["message"]) == (401, "Invalid API key"), path
    # A real key in apikey does not make an unknown sb_ bearer a service role.
    reply = httpx.get(
        f"{s.api_url}/rest/v1/cars?select=id&id=eq.{UNPUBLISHED}",
        headers={"apikey": s.publishable_key, "Authorization": f"Bearer {s.secret_key}"},
    )
    assert (reply.status_code, reply.json()) == (200, [])


def test_a_users_jwt_passes_through_with_a_new_key(stack: LocalStack) -> None:
    s = stack.settings
    email = unique_email("through")
    client = supabase_client(s.api_url, s.publishable_key)
    session = client.auth.sign_up({"email": email, "password": PASSWORD}).session
    assert session is not None
    reply = httpx.get(
        f"{s.api_url}/auth/v1/user",
        headers={"apikey": s.publishable_key, "Authorization": f"Bearer {session.access_token}"},
    )
    assert (reply.status_code, reply.json()["email"]) == (200, email)


# ES256 tokens and the JWKS ---------------------------------------------------------------
def test_jwks_publishes_only_public_parts_and_needs_no_key(stack: LocalStack) -> None:
    reply = httpx.get(f"{stack.settings.api_url}/auth/v1/.well-known/jwks.json")
    assert reply.status_code == 200
    (key,) = reply.json()["keys"]
    assert {k: key[k] for k in ("kty", "crv", "alg", "kid", "x", "y")} == {
        k: LOCAL_SIGNING_KEY[k] for k in ("kty", "crv", "alg", "kid", "x", "y")
    }
    assert "d" not in key and key["use"] == "sig" and key["key_ops"] == ["verify"]


def test_get_claims_verifies_an_es256_token_via_the_jwks(stack: LocalStack) -> None:
    s = stack.settings
    client = supabase_client(s.api_url, s.publishable_key)
    session = client.auth.sign_up({"email": unique_email("claims"), "password": PASSWORD}).session
    assert session is not None
    verified = client.auth.get_claims()
    assert verified is not None
    assert verified["headers"]["alg"] == "ES256" and verified["headers"]["kid"] == LOCAL_SIGNING_KEY["kid"]
    assert verified["claims"]["sub"] == session.user.id
    # The same check refuses a token signed with another key under the same kid.
    forged = _sign_es256(_new_ec_jwk("x"), LOCAL_SIGNING_KEY["kid"], _claims(sub=session.user.id))
    with pytest.raises(AuthInvalidJwtError):
        client.auth.get_claims(forged)


def test_sdk_claims_are_typed_and_verified(stack: LocalStack) -> None:
    s = stack.settings
    with Carbook(s.api_url, s.publishable_key) as cb:
        with pytest.raises(NotAuthenticatedError, match="sign in first"):
            cb.auth.claims()
        user = cb.auth.sign_up(unique_email("sdk-claims"), PASSWORD)
        claims = cb.auth.claims()
        assert (claims.sub, claims.role, claims.is_anonymous) == (user.id, "authenticated", False)
        assert claims.email == user.email and claims.exp > claims.iat  # type: ignore[operator]
    # A legacy HS256 token (minted with the JWT secret) is checked by asking Auth.
    with Carbook(s.api_url, s.anon_key) as legacy:
        legacy.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        assert legacy.auth.claims().email == ADMIN_EMAIL


def test_sdk_claims_refuse_a_forged_session_token(stack: LocalStack, tmp_path: Path) -> None:
    """A session whose access token was swapped for one signed by another key."""
    from carbook_sdk import FileSessionStore

    s = stack.settings
    store = tmp_path / "session.json"
    with Carbook(s.api_url, s.publishable_key, session_store=FileSessionStore(store)) as cb:
        cb.auth.sign_up(unique_email("forged-session"), PASSWORD)
    saved = json.loads(store.read_text())
    (name,) = saved
    session = json.loads(saved[name])
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    session["access_token"] = _sign_es256(_new_ec_jwk("x"), LOCAL_SIGNING_KEY["kid"], claims)
    saved[name] = json.dumps(session)
    store.write_text(json.dumps(saved))
    with (
        Carbook(s.api_url, s.publishable_key, session_store=FileSessionStore(store)) as cb,
        pytest.raises(SessionExpiredError) as err,
    ):
        cb.auth.claims()
    assert "sign in again" in str(err.value).lower() or "signature" in str(err.value).lower()


@pytest.mark.parametrize("case", ["another EC key", "unknown kid", "alg switch", "expired ES256"])
def test_forged_user_tokens_are_refused_everywhere(stack: LocalStack, case: str) -> None:
    s = stack.settings
    kid = LOCAL_SIGNING_KEY["kid"]
    claims = _claims()
    token = {
        "another EC key": lambda: _sign_es256(_new_ec_jwk(kid), kid, claims),
        "unknown kid": lambda: _sign_es256(_new_ec_jwk("not-in-the-set"), "not-in-the-set", claims),
        "alg switch": lambda: _alg_switch(s.jwt_secret, kid, claims),
        "expired ES256": lambda: _sign_es256(LOCAL_SIGNING_KEY, kid, _claims(exp=int(time.time()) - 60)),
    }[case]()
    (car,) = make_cars(stack, 1, f"forged-{uuid.uuid4().hex[:6]}")
    before = (_booking_state(stack, car), _object_count(stack))
    headers = {"apikey": s.publishable_key, "Authorization": f"Bearer {token}"}
    rpc = httpx.post(f"{s.api_url}/rest/v1/rpc/book_car_atomic", json={"car_id": car}, headers=headers)
    upload = httpx.post(
        f"{s.api_url}/storage/v1/object/{BUCKET}/forged/{uuid.uuid4().hex}.png",
        headers=headers,
        files={"file": ("x.png", PNG, "image/png")},
    )
    user = httpx.get(f"{s.api_url}/auth/v1/user", headers=headers)
    assert (rpc.status_code, upload.status_code, user.status_code) == (401, 401, 403), (
        rpc.text,
        upload.text,
        user.text,
    )
    assert user.json()["error_code"] == "bad_jwt"
    assert (_booking_state(stack, car), _object_count(stack)) == before


# Signing keys from config.toml -----------------------------------------------------------
def _project(tmp_path: Path, keys: Any, name: str = "signing_keys.json") -> Path:
    supabase = tmp_path / "supabase"
    supabase.mkdir(parents=True, exist_ok=True)
    (supabase / "config.toml").write_text(f'[auth]\nsigning_keys_path = "./{name}"\n')
    if keys is not None:
        (supabase / name).write_text(keys if isinstance(keys, str) else json.dumps(keys))
    return supabase / "config.toml"


def test_signing_keys_path_is_read_relative_to_the_supabase_folder(tmp_path: Path) -> None:
    first, second = _new_ec_jwk("first"), _new_ec_jwk("second")
    config = load_local_config(_project(tmp_path, [first, second]))
    settings = StackSettings.from_config(tmp_path / "state", config)
    assert [k["kid"] for k in settings.signing_keys] == ["first", "second"]
    assert settings.keys().kid == "first"
    assert all("d" not in k for k in settings.keys().jwks()["keys"])


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not valid JSON"),
        ([], "must hold a JSON array of private JWKs"),
        ([{"kty": "EC", "alg": "HS256", "kid": "a"}], "alg must be ES256 or RS256"),
        ([{k: v for k, v in LOCAL_SIGNING_KEY.items() if k != "d"}], "is a public key"),
        ([{**LOCAL_SIGNING_KEY, "kid": ""}], "every key needs a kid"),
        ([LOCAL_SIGNING_KEY, LOCAL_SIGNING_KEY], "two keys share a kid"),
    ],
)
def test_a_bad_signing_key_file_is_a_clear_error(tmp_path: Path, keys: Any, message: str) -> None:
    config = load_local_config(_project(tmp_path, keys))
    with pytest.raises(ConfigurationError) as err:
        StackSettings.from_config(tmp_path / "state", config)
    assert message in str(err.value) and "signing_keys_path" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def rotated_stack() -> Iterator[tuple[LocalStack, dict[str, Any], dict[str, Any]]]:
    """A stack whose config names two keys: a new one that signs, an old one still trusted."""
    new, old = _new_ec_jwk(f"new-{uuid.uuid4()}"), _new_ec_jwk(f"old-{uuid.uuid4()}")
    with temporary_stack("carbook-keys-", signing_keys=(new, old)) as stack:
        yield stack, new, old


def test_own_signing_keys_sign_and_a_rotated_out_key_still_verifies(
    rotated_stack: tuple[LocalStack, dict[str, Any], dict[str, Any]],
) -> None:
    stack, new, old = rotated_stack
    s = stack.settings
    jwks = httpx.get(f"{s.api_url}/auth/v1/.well-known/jwks.json").json()
    assert [k["kid"] for k in jwks["keys"]] == [new["kid"], old["kid"]]
    assert (s.state_dir / "stack.json").stat().st_mode & 0o077 == 0  # it holds the private keys
    client = supabase_client(s.api_url, s.publishable_key)
    session = client.auth.sign_up({"email": unique_email("rotated"), "password": PASSWORD}).session
    assert session is not None
    assert jwt.get_unverified_header(session.access_token)["kid"] == new["kid"]
    # A token the old key signed (before the rotation) still passes PostgREST and Auth.
    claims = jwt.decode(session.access_token, options={"verify_signature": False})
    older = _sign_es256(old, old["kid"], claims)
    headers = {"apikey": s.publishable_key, "Authorization": f"Bearer {older}"}
    assert httpx.get(f"{s.api_url}/auth/v1/user", headers=headers).json()["id"] == session.user.id
    assert httpx.get(f"{s.api_url}/rest/v1/cars?select=id&limit=1", headers=headers).status_code == 200
    # The CLI's well-known key is not trusted by a project with keys of its own.
    default = _sign_es256(LOCAL_SIGNING_KEY, LOCAL_SIGNING_KEY["kid"], claims)
    headers["Authorization"] = f"Bearer {default}"
    assert httpx.get(f"{s.api_url}/rest/v1/cars?select=id&limit=1", headers=headers).status_code == 401
    assert httpx.get(f"{s.api_url}/auth/v1/user", headers=headers).status_code == 403
