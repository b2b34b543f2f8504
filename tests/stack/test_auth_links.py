"""Email links without mail, through supabase-py's own calls: ``auth.admin.generate_link``
makes what GoTrue would send, ``auth.verify_otp`` and the link itself spend it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from supabase_auth.errors import AuthApiError

from carbook_stack.manager import LocalStack
from tests.helpers import supabase_client, unique_email

REDIRECT = "http://127.0.0.1:3000/welcome"


def _admin(stack: LocalStack) -> object:
    return supabase_client(stack.settings.api_url, stack.settings.service_role_key)


def test_signup_link_confirms_and_signs_in_by_otp(stack: LocalStack) -> None:
    s = stack.settings
    email = unique_email("link")
    admin = _admin(stack)
    link = admin.auth.admin.generate_link(  # type: ignore[attr-defined]
        {"type": "signup", "email": email, "password": "long-enough-1", "options": {"redirect_to": REDIRECT}}
    )
    props = link.properties
    assert props.verification_type == "signup" and props.redirect_to == REDIRECT
    assert len(props.email_otp) == 6 and props.email_otp.isdigit() and len(props.hashed_token) == 56
    assert props.action_link.startswith(f"{s.api_url}/auth/v1/verify?token={props.hashed_token}&type=signup")
    assert link.user.email == email and link.user.email_confirmed_at is None
    user = supabase_client(s.api_url, s.anon_key)
    done = user.auth.verify_otp({"email": email, "token": props.email_otp, "type": "email"})
    assert done.session is not None and done.user is not None and done.user.email_confirmed_at is not None
    # Good once.
    with pytest.raises(AuthApiError) as again:
        user.auth.verify_otp({"email": email, "token": props.email_otp, "type": "email"})
    assert again.value.code == "otp_expired" and again.value.status == 403
    # Now a password sign-in works (it needed the confirmation when confirmations are on).
    assert user.auth.sign_in_with_password({"email": email, "password": "long-enough-1"}).session


@pytest.mark.parametrize("kind", ["magiclink", "recovery", "invite"])
def test_link_redirects_with_the_session_in_the_fragment(stack: LocalStack, kind: str) -> None:
    s = stack.settings
    email = unique_email(kind)
    admin = _admin(stack)
    if kind != "invite":
        admin.auth.admin.create_user({"email": email, "password": "long-enough-1"})  # type: ignore[attr-defined]
    link = admin.auth.admin.generate_link(  # type: ignore[attr-defined]
        {"type": kind, "email": email, "options": {"redirect_to": REDIRECT}}
    )
    reply = httpx.get(link.properties.action_link, follow_redirects=False)
    assert reply.status_code == 303, reply.text
    where = urlsplit(reply.headers["location"])
    assert f"{where.scheme}://{where.netloc}{where.path}" == REDIRECT
    fragment = parse_qs(where.fragment, keep_blank_values=True)
    assert fragment["type"] == [kind] and fragment["token_type"] == ["bearer"] and "sb" in fragment
    access = fragment["access_token"][0]
    me = httpx.get(
        f"{s.api_url}/auth/v1/user", headers={"apikey": s.anon_key, "Authorization": f"Bearer {access}"}
    )
    assert me.status_code == 200 and me.json()["email"] == email and me.json()["email_confirmed_at"]
    # Spent: the same link now redirects with GoTrue's error instead.
    spent = urlsplit(httpx.get(link.properties.action_link, follow_redirects=False).headers["location"])
    assert parse_qs(spent.fragment)["error_code"] == ["otp_expired"]


def test_email_change_link_changes_the_address(stack: LocalStack) -> None:
    s = stack.settings
    old, new = unique_email("old"), unique_email("new")
    admin = _admin(stack)
    admin.auth.admin.create_user({"email": old, "password": "long-enough-1", "email_confirm": True})  # type: ignore[attr-defined]
    link = admin.auth.admin.generate_link(  # type: ignore[attr-defined]
        {"type": "email_change_new", "email": old, "new_email": new}
    )
    user = supabase_client(s.api_url, s.anon_key)
    done = user.auth.verify_otp({"token_hash": link.properties.hashed_token, "type": "email_change"})
    assert done.user is not None and done.user.email == new


def test_generate_link_refuses_as_gotrue_does(stack: LocalStack) -> None:
    s = stack.settings
    with httpx.Client(base_url=f"{s.api_url}/auth/v1", timeout=30) as c:
        service = {"apikey": s.service_role_key}
        nobody = c.post(
            "/admin/generate_link", headers=service, json={"type": "recovery", "email": unique_email()}
        )
        assert nobody.status_code == 404 and nobody.json()["error_code"] == "user_not_found"
        odd = c.post(
            "/admin/generate_link", headers=service, json={"type": "teleport", "email": unique_email()}
        )
        assert odd.status_code == 400 and odd.json()["error_code"] == "validation_failed"
        anon = c.post("/admin/generate_link", headers={"apikey": s.anon_key}, json={"type": "signup"})
        assert anon.status_code == 403 and anon.json()["error_code"] == "not_admin"


def test_a_link_never_leads_to_another_host(stack: LocalStack) -> None:
    """GoTrue's rule: a ``redirect_to`` off the site URL's host and off
    ``additional_redirect_urls`` is replaced by the site URL, both in the link that
    generate_link makes and when a link is opened: the session in the fragment never
    reaches another host."""
    s = stack.settings
    email = unique_email("redirect")
    admin = _admin(stack)
    admin.auth.admin.create_user({"email": email, "password": "long-enough-1"})  # type: ignore[attr-defined]
    evil = "http://evil.example/steal"
    link = admin.auth.admin.generate_link(  # type: ignore[attr-defined]
        {"type": "magiclink", "email": email, "options": {"redirect_to": evil}}
    )
    assert link.properties.redirect_to == s.site_url
    assert "evil.example" not in link.properties.action_link
    # A link whose redirect_to was changed by hand still leads home.
    forged = link.properties.action_link.split("&redirect_to=")[0] + "&redirect_to=" + evil
    reply = httpx.get(forged, follow_redirects=False)
    assert reply.status_code == 303
    where = urlsplit(reply.headers["location"])
    assert f"{where.scheme}://{where.netloc}" == s.site_url
    assert "access_token" in parse_qs(where.fragment)  # the token was good: spent, at home


@pytest.mark.parametrize("token", ["a\u0000b", "\u0000", "zz" * 28, "x" * 500])
def test_a_link_with_a_token_no_link_carries_leads_home_with_the_error(stack: LocalStack, token: str) -> None:
    s = stack.settings
    reply = httpx.get(
        f"{s.api_url}/auth/v1/verify", params={"token": token, "type": "magiclink"}, follow_redirects=False
    )
    assert reply.status_code == 303, reply.text
    where = urlsplit(reply.headers["location"])
    assert f"{where.scheme}://{where.netloc}" == s.site_url
    assert parse_qs(where.fragment)["error_code"] == ["otp_expired"]
