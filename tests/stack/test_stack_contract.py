"""The gateway's contract with Supabase clients, detail by detail: where the apikey may
come from, what the tokens carry, how passwords are kept, which headers reach PostgREST,
and the Auth routes supabase-py uses less often (PUT /user, /settings, admin metadata)."""

from __future__ import annotations

import uuid

import httpx
import jwt
import pytest

from carbook_stack.manager import LocalStack
from carbook_stack.tokens import LOCAL_SIGNING_KEY
from tests.helpers import supabase_client, unique_email

from ..helpers import stack_db

PASSWORD = "correct-horse-9"
UNPUBLISHED = "7e5a9c7d-4b7d-4f2e-9a63-5d8e7c000007"  # seed: the one unpublished car


def test_the_apikey_may_come_as_a_query_parameter(stack: LocalStack) -> None:
    s = stack.settings
    url = f"{s.api_url}/rest/v1/cars?select=id&limit=1"
    assert httpx.get(url).status_code == 401
    assert httpx.get(f"{url}&apikey={s.anon_key}").status_code == 200
    assert httpx.get(f"{url}&apikey=not-a-key").status_code == 401


def test_without_authorization_the_apikey_is_the_bearer(stack: LocalStack) -> None:
    s = stack.settings
    url = f"{s.api_url}/rest/v1/cars?select=id&id=eq.{UNPUBLISHED}"
    as_anon = httpx.get(url, headers={"apikey": s.anon_key})
    as_service = httpx.get(url, headers={"apikey": s.service_role_key})
    assert (as_anon.status_code, as_anon.json()) == (200, [])  # anon: RLS hides it
    assert (as_service.status_code, as_service.json()) == (200, [{"id": UNPUBLISHED}])


def test_access_tokens_carry_gotrue_claims_and_passwords_are_bcrypt(stack: LocalStack) -> None:
    s = stack.settings
    client = supabase_client(s.api_url, s.anon_key)
    email = unique_email()
    session = client.auth.sign_up(
        {"email": email, "password": PASSWORD, "options": {"data": {"name": "Ravi"}}}
    ).session
    assert session is not None
    # Signed ES256 by the key the JWKS names, as today's Supabase Auth signs user tokens.
    header = jwt.get_unverified_header(session.access_token)
    assert (header["alg"], header["kid"]) == ("ES256", LOCAL_SIGNING_KEY["kid"])
    jwks = httpx.get(f"{s.api_url}/auth/v1/.well-known/jwks.json").json()
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    claims = jwt.decode(session.access_token, key, algorithms=["ES256"], audience="authenticated")
    assert claims["sub"] == session.user.id and claims["email"] == email
    assert (claims["role"], claims["aud"]) == ("authenticated", "authenticated")
    assert claims["user_metadata"] == {"name": "Ravi"}
    assert claims["app_metadata"]["provider"] == "email"
    assert uuid.UUID(claims["session_id"])
    assert claims["exp"] - claims["iat"] == s.jwt_expiry == session.expires_in
    with stack_db(stack) as conn:
        row = conn.execute("select encrypted_password from auth.users where email = %s", (email,)).fetchone()
    assert row is not None and row[0].startswith("$2") and PASSWORD not in row[0]

    import bcrypt

    assert bcrypt.checkpw(PASSWORD.encode(), row[0].encode())


def test_put_user_changes_metadata_and_password(stack: LocalStack) -> None:
    s = stack.settings
    client = supabase_client(s.api_url, s.anon_key)
    email = unique_email()
    client.auth.sign_up({"email": email, "password": PASSWORD})
    updated = client.auth.update_user({"data": {"city": "Pune"}, "password": "a-new-secret-7"})
    assert updated.user.user_metadata == {"city": "Pune"}
    client.auth.sign_out()
    with pytest.raises(Exception, match="Invalid login credentials"):
        client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    again = client.auth.sign_in_with_password({"email": email, "password": "a-new-secret-7"})
    assert again.user is not None and again.user.user_metadata == {"city": "Pune"}


def test_settings_say_what_this_auth_offers(stack: LocalStack) -> None:
    s = stack.settings
    reply = httpx.get(f"{s.api_url}/auth/v1/settings", headers={"apikey": s.anon_key})
    assert reply.status_code == 200
    body = reply.json()
    assert body["external"]["email"] is True and body["disable_signup"] is False


def test_admin_create_user_keeps_both_metadata(stack: LocalStack) -> None:
    s = stack.settings
    service = supabase_client(s.api_url, s.service_role_key)
    email = unique_email()
    made = service.auth.admin.create_user(
        {
            "email": email,
            "password": PASSWORD,
            "email_confirm": True,
            "user_metadata": {"name": "Meera"},
            "app_metadata": {"tier": "gold"},
        }
    ).user
    assert made.user_metadata == {"name": "Meera"} and made.app_metadata["tier"] == "gold"
    fetched = service.auth.admin.get_user_by_id(made.id).user
    assert fetched.user_metadata == {"name": "Meera"} and fetched.app_metadata["tier"] == "gold"
    service.auth.admin.delete_user(made.id)


def test_range_and_profile_headers_reach_postgrest(stack: LocalStack) -> None:
    s = stack.settings
    headers = {"apikey": s.anon_key}
    url = f"{s.api_url}/rest/v1/cars?select=id&order=id"
    ranged = httpx.get(
        url, headers={**headers, "Range-Unit": "items", "Range": "0-1", "Prefer": "count=exact"}
    )
    assert ranged.status_code in (200, 206) and len(ranged.json()) == 2
    assert ranged.headers["content-range"].startswith("0-1/")
    public = httpx.get(url, headers={**headers, "Accept-Profile": "public"})
    assert public.status_code == 200
    other = httpx.get(url, headers={**headers, "Accept-Profile": "private"})
    assert other.status_code == 406 and other.json()["code"] == "PGRST106"
    write = httpx.post(
        f"{s.api_url}/rest/v1/cars",
        json={"make": "x"},
        headers={**headers, "Content-Profile": "private"},
    )
    assert write.status_code == 406 and write.json()["code"] == "PGRST106"


def test_email_confirmations_when_the_config_asks_for_them(own_stack: LocalStack) -> None:
    """[auth.email] enable_confirmations = true: sign-up gives no session, sign-in says
    email_not_confirmed, until an admin confirms the address."""
    from supabase_auth.errors import AuthApiError

    from carbook_sdk import Carbook, NotAuthenticatedError

    own_stack.settings.enable_confirmations = True
    own_stack.start()
    s = own_stack.settings
    client = supabase_client(s.api_url, s.anon_key)
    email = unique_email()
    reply = client.auth.sign_up({"email": email, "password": PASSWORD})
    assert reply.session is None and reply.user is not None and reply.user.email_confirmed_at is None
    with pytest.raises(AuthApiError) as refused:
        client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert refused.value.code == "email_not_confirmed"
    with (
        Carbook(s.api_url, s.anon_key) as cb,
        pytest.raises(NotAuthenticatedError, match="confirm the email"),
    ):
        cb.auth.sign_up(unique_email(), PASSWORD)
    settings = httpx.get(f"{s.api_url}/auth/v1/settings", headers={"apikey": s.anon_key}).json()
    assert settings["mailer_autoconfirm"] is False

    service = supabase_client(s.api_url, s.service_role_key)
    service.auth.admin.update_user_by_id(reply.user.id, {"email_confirm": True})
    signed_in = client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert signed_in.session is not None and signed_in.user.email_confirmed_at is not None
