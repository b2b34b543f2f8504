"""Anonymous sign-ins and identities on the real stack, through the plain supabase-py
client and through the SDK: on (a stack of this module's own) and off (the session's)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import psycopg
import pytest
from supabase_auth.errors import AuthApiError

from carbook_sdk import AccessDeniedError, Carbook, NotAuthenticatedError
from carbook_stack.manager import LocalStack
from tests.helpers import supabase_client, unique_email

from ..helpers import temporary_stack

PASSWORD = "correct-horse-9"


@pytest.fixture(scope="module")
def anon_stack() -> Iterator[LocalStack]:
    """One stack with ``[auth] enable_anonymous_sign_ins = true`` for every test that needs it."""
    with temporary_stack("carbook-anon-", enable_anonymous_sign_ins=True) as st:
        yield st


def _sql(stack: LocalStack, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.info().db_url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _new_car(stack: LocalStack) -> str:
    rows = _sql(
        stack,
        """insert into public.cars (make, model, year, image_path, is_published, price_in_paise)
           values ('Kia', 'Seltos', 2024, 'cars/seltos.png', true, 120000) returning id::text""",
    )
    return str(rows[0][0])


# Anonymous sign-ins on ----------------------------------------------------------------
def test_sign_in_anonymously_gives_an_anonymous_user_and_token(anon_stack: LocalStack) -> None:
    info = anon_stack.info()
    client = supabase_client(info.api_url, info.anon_key)
    reply = client.auth.sign_in_anonymously({"options": {"data": {"theme": "dark"}}})
    assert reply.session is not None and reply.user is not None
    user = reply.user
    assert (user.is_anonymous, user.role, user.email, user.identities) == (True, "authenticated", "", [])
    assert user.user_metadata == {"theme": "dark"} and "provider" not in user.app_metadata
    claims = _claims(reply.session.access_token)
    assert (claims["is_anonymous"], claims["role"], claims["sub"]) == (True, "authenticated", user.id)
    assert claims["amr"][0]["method"] == "anonymous"
    assert _sql(anon_stack, "select is_anonymous, email from auth.users where id = %s", (user.id,)) == [
        (True, None)
    ]
    assert _sql(anon_stack, "select count(*) from auth.identities where user_id = %s", (user.id,)) == [(0,)]

    # The refresh-token grant and /user keep the user anonymous.
    refreshed = client.auth.refresh_session()
    assert refreshed.session is not None and refreshed.user is not None
    assert refreshed.user.is_anonymous and _claims(refreshed.session.access_token)["is_anonymous"] is True
    me = client.auth.get_user()
    assert me is not None and me.user.is_anonymous and me.user.id == user.id


def test_an_anonymous_user_cannot_book_and_sees_what_anon_sees(anon_stack: LocalStack) -> None:
    info = anon_stack.info()
    car = _new_car(anon_stack)
    audit = "select count(*) from public.audit_logs where record_id = %s and action = 'car.booked'"
    client = supabase_client(info.api_url, info.anon_key)
    client.auth.sign_in_anonymously()

    outcome = client.rpc("book_car_atomic", {"car_id": car}).execute().data
    assert (outcome["success"], outcome["code"], outcome["message"]) == (
        False,
        "not_authenticated",
        "Sign in with an account to book a car.",
    )
    assert _sql(anon_stack, "select booking_status, booked_by from public.cars where id = %s", (car,)) == [
        ("available", None)
    ]
    assert _sql(anon_stack, audit, (car,)) == [(0,)]

    listed = {row["id"] for row in client.table("cars").select("id").execute().data}
    expected = {
        str(r[0])
        for r in _sql(
            anon_stack, "select id from public.cars where is_published and booking_status = 'available'"
        )
    }
    # The seed has unpublished and booked cars: none of them is listed.
    assert _sql(anon_stack, "select count(*) from public.cars")[0][0] > len(expected)
    assert listed == expected and car in listed


def test_sdk_sign_in_anonymously_and_a_clear_booking_refusal(anon_stack: LocalStack) -> None:
    info = anon_stack.info()
    car = _new_car(anon_stack)
    with Carbook(info.api_url, info.anon_key) as cb:
        user = cb.auth.sign_in_anonymously(data={"from": "sdk"})
        assert user.is_anonymous and user.identities == () and user.user_metadata == {"from": "sdk"}
        current = cb.auth.current_user()
        assert current is not None and current.is_anonymous and current.id == user.id
        with pytest.raises(NotAuthenticatedError) as refused:
            cb.bookings.book(car)
    assert str(refused.value) == "Sign in with an account to book a car."
    assert _sql(anon_stack, "select booking_status from public.cars where id = %s", (car,)) == [
        ("available",)
    ]


def test_an_anonymous_user_who_adds_an_email_becomes_permanent_and_may_book(anon_stack: LocalStack) -> None:
    """GoTrue's conversion: with no email confirmations, the address counts at once; the
    user keeps their id, gets an email identity, and the next token is not anonymous."""
    info = anon_stack.info()
    car = _new_car(anon_stack)
    client = supabase_client(info.api_url, info.anon_key)
    anonymous = client.auth.sign_in_anonymously().user
    assert anonymous is not None
    with pytest.raises(AuthApiError) as no_email:
        client.auth.update_user({"password": PASSWORD})
    assert (no_email.value.code, no_email.value.status) == ("validation_failed", 422)

    email = unique_email("converted")
    updated = client.auth.update_user({"email": email, "password": PASSWORD}).user
    assert (updated.id, updated.is_anonymous, updated.email) == (anonymous.id, False, email)
    assert updated.identities is not None and updated.email_confirmed_at is not None
    assert updated.app_metadata.get("providers") == ["email"]
    identity = updated.identities[0]
    assert (len(updated.identities), identity.provider, identity.identity_data["email"]) == (
        1,
        "email",
        email,
    )

    session = client.auth.refresh_session().session
    assert session is not None and _claims(session.access_token)["is_anonymous"] is False
    assert client.rpc("book_car_atomic", {"car_id": car}).execute().data["code"] == "booked"
    client.auth.sign_out()
    assert client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).user.id == anonymous.id


# Anonymous sign-ins off (the session's stack, as config.toml ships) ----------------------
def test_disabled_is_anonymous_provider_disabled(stack: LocalStack) -> None:
    info = stack.info()
    client = supabase_client(info.api_url, info.anon_key)
    with pytest.raises(AuthApiError) as refused:
        client.auth.sign_in_anonymously()
    assert (refused.value.code, refused.value.status, refused.value.message) == (
        "anonymous_provider_disabled",
        422,
        "Anonymous sign-ins are disabled",
    )
    assert client.auth.get_session() is None


def test_sdk_says_how_to_turn_anonymous_sign_ins_on(stack: LocalStack) -> None:
    info = stack.info()
    count = "select count(*) from auth.users"
    before = _sql(stack, count)
    with Carbook(info.api_url, info.anon_key) as cb, pytest.raises(AccessDeniedError) as refused:
        cb.auth.sign_in_anonymously()
    message = str(refused.value)
    assert message.startswith("Anonymous sign-ins are disabled (turn on [auth] enable_anonymous_sign_ins")
    assert "\n" not in message
    assert _sql(stack, count) == before


# Identities --------------------------------------------------------------------------
def _email_identity(identities: list[Any], user_id: str, email: str) -> None:
    assert len(identities) == 1
    identity = identities[0]
    assert (identity.provider, identity.id, identity.user_id) == ("email", user_id, user_id)
    assert uuid.UUID(identity.identity_id) != uuid.UUID(user_id)
    assert {k: identity.identity_data[k] for k in ("sub", "email", "email_verified", "phone_verified")} == {
        "sub": user_id,
        "email": email,
        "email_verified": False,
        "phone_verified": False,
    }


def test_sign_up_makes_one_email_identity_shown_in_every_user_reply(stack: LocalStack) -> None:
    info = stack.info()
    client = supabase_client(info.api_url, info.anon_key)
    email = unique_email()
    signed_up = client.auth.sign_up(
        {"email": email, "password": PASSWORD, "options": {"data": {"name": "Ravi"}}}
    )
    assert signed_up.user is not None and signed_up.user.identities is not None
    user_id = signed_up.user.id
    _email_identity(signed_up.user.identities, user_id, email)
    assert signed_up.user.identities[0].identity_data["name"] == "Ravi"
    assert signed_up.user.is_anonymous is False
    rows = _sql(
        stack,
        "select id::text, provider_id, provider, email from auth.identities where user_id = %s",
        (user_id,),
    )
    assert rows == [(signed_up.user.identities[0].identity_id, user_id, "email", email)]

    signed_in = client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    refreshed = client.auth.refresh_session()
    me = client.auth.get_user()
    assert me is not None
    for user in (signed_in.user, refreshed.user, me.user):
        assert user is not None and user.identities is not None
        _email_identity(user.identities, user_id, email)


def test_admin_created_user_has_one_email_identity(stack: LocalStack) -> None:
    info = stack.info()
    admin = supabase_client(info.api_url, info.service_role_key).auth.admin
    email = unique_email("admin-made")
    created = admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True})
    assert created.user.identities is not None
    _email_identity(created.user.identities, created.user.id, email)
    fetched = admin.get_user_by_id(created.user.id)
    assert fetched.user.identities is not None
    _email_identity(fetched.user.identities, created.user.id, email)
    listed = {u.id: u for u in admin.list_users(per_page=1000)}
    listed_identities = listed[created.user.id].identities
    assert listed_identities is not None
    _email_identity(listed_identities, created.user.id, email)


def test_a_user_without_identity_rows_still_signs_in(stack: LocalStack) -> None:
    """Users made before identities were kept (and the seed's) have none; they work as before."""
    info = stack.info()
    admin = supabase_client(info.api_url, info.service_role_key).auth.admin
    email = unique_email("legacy")
    created = admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True})
    _sql(stack, "delete from auth.identities where user_id = %s returning 1", (created.user.id,))
    client = supabase_client(info.api_url, info.anon_key)
    signed_in = client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert signed_in.user is not None and signed_in.user.identities == []
    assert signed_in.user.id == created.user.id and not signed_in.user.is_anonymous
