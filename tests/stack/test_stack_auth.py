"""/auth/v1 through the plain supabase-py client."""

from __future__ import annotations

import pytest
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from carbook_stack.manager import LocalStack
from tests.helpers import stack_db, supabase_client, unique_email

PASSWORD = "correct-horse-9"


def test_sign_up_in_get_user_refresh_and_out(stack: LocalStack) -> None:
    info = stack.info()
    client = supabase_client(info.api_url, info.anon_key)
    email = unique_email()
    signed_up = client.auth.sign_up(
        {"email": email, "password": PASSWORD, "options": {"data": {"name": "Asha"}}}
    )
    assert signed_up.session is not None and signed_up.user is not None
    assert signed_up.user.email == email and signed_up.user.user_metadata == {"name": "Asha"}

    client.auth.sign_out()
    signed_in = client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert signed_in.session is not None
    assert signed_in.user is not None and signed_in.user.id == signed_up.user.id

    me = client.auth.get_user()
    assert me is not None and me.user.email == email

    old_refresh = signed_in.session.refresh_token
    refreshed = client.auth.refresh_session()
    assert refreshed.session is not None
    assert refreshed.session.refresh_token != old_refresh
    assert refreshed.user is not None and refreshed.user.id == signed_up.user.id

    client.auth.sign_out()
    assert client.auth.get_session() is None


def test_a_reused_refresh_token_is_refused(stack: LocalStack) -> None:
    info = stack.info()
    client = supabase_client(info.api_url, info.anon_key)
    session = client.auth.sign_up({"email": unique_email(), "password": PASSWORD}).session
    assert session is not None
    first = session.refresh_token
    second = client.auth.refresh_session(first).session
    assert second is not None and second.refresh_token != first
    # A retry with the same token before its successor was used (a lost reply, two tabs)
    # gets that successor, as GoTrue answers it.
    retry = client.auth.refresh_session(first).session
    assert retry is not None and retry.refresh_token == second.refresh_token
    third = client.auth.refresh_session(second.refresh_token).session
    assert third is not None
    # Now the first token is stale twice over: refused, and the session is ended as stolen.
    with pytest.raises(AuthApiError) as info_:
        client.auth.refresh_session(first)
    assert info_.value.code == "refresh_token_already_used"
    with pytest.raises(AuthApiError) as ended:
        client.auth.refresh_session(third.refresh_token)
    assert ended.value.code in ("refresh_token_not_found", "refresh_token_already_used")


def test_wrong_password_is_invalid_credentials(stack: LocalStack) -> None:
    info = stack.info()
    client = supabase_client(info.api_url, info.anon_key)
    email = unique_email()
    client.auth.sign_up({"email": email, "password": PASSWORD})
    with pytest.raises(AuthApiError) as err:
        client.auth.sign_in_with_password({"email": email, "password": "wrong-password"})
    assert (err.value.code, err.value.status, err.value.message) == (
        "invalid_credentials",
        400,
        "Invalid login credentials",
    )
    with pytest.raises(AuthApiError) as unknown:
        client.auth.sign_in_with_password({"email": unique_email(), "password": PASSWORD})
    assert unknown.value.code == "invalid_credentials"


def test_duplicate_signup_is_refused_and_changes_nothing(stack: LocalStack) -> None:
    info = stack.info()
    client = supabase_client(info.api_url, info.anon_key)
    email = unique_email()
    client.auth.sign_up({"email": email, "password": PASSWORD})
    with pytest.raises(AuthApiError) as err:
        client.auth.sign_up({"email": email.upper(), "password": "another-password"})
    assert err.value.code == "user_already_exists"
    # The original password still works: nothing was overwritten.
    assert client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session is not None


def test_weak_password_is_refused(stack: LocalStack) -> None:
    info = stack.info()
    client = supabase_client(info.api_url, info.anon_key)
    with pytest.raises(AuthWeakPasswordError) as err:
        client.auth.sign_up({"email": unique_email(), "password": "short"})
    assert err.value.code == "weak_password" and err.value.reasons == ["length"]


def test_admin_create_user_needs_the_service_role(stack: LocalStack) -> None:
    info = stack.info()
    admin = supabase_client(info.api_url, info.service_role_key)
    email = unique_email("made")
    created = admin.auth.admin.create_user(
        {"email": email, "password": PASSWORD, "email_confirm": True, "app_metadata": {"team": "ops"}}
    )
    assert created.user.email == email
    assert created.user.app_metadata["team"] == "ops" and created.user.email_confirmed_at is not None
    fetched = admin.auth.admin.get_user_by_id(created.user.id)
    assert fetched.user.id == created.user.id
    assert email in {u.email for u in admin.auth.admin.list_users(page=1, per_page=1000)}

    anon = supabase_client(info.api_url, info.anon_key)
    with pytest.raises(AuthApiError) as err:
        anon.auth.admin.create_user({"email": unique_email(), "password": PASSWORD})
    assert err.value.code == "not_admin"

    admin.auth.admin.delete_user(created.user.id)
    with pytest.raises(AuthApiError) as gone:
        admin.auth.admin.get_user_by_id(created.user.id)
    assert gone.value.code == "user_not_found"


def _user_row(stack: LocalStack, email: str) -> tuple[object, ...] | None:
    with stack_db(stack) as conn:
        return conn.execute(
            "select id, role, banned_until, updated_at from auth.users where lower(email) = lower(%s)",
            (email,),
        ).fetchone()


def test_a_ban_refuses_sign_in_and_refresh_until_it_is_lifted(stack: LocalStack) -> None:
    info = stack.info()
    admin = supabase_client(info.api_url, info.service_role_key)
    email = unique_email("banned")
    made = admin.auth.admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True})
    client = supabase_client(info.api_url, info.anon_key)
    assert client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session is not None

    banned = admin.auth.admin.update_user_by_id(made.user.id, {"ban_duration": "1h30m"})
    assert banned.user.banned_until is not None  # what GoTrue answers: the ban, not a lie
    with pytest.raises(AuthApiError) as signing_in:
        supabase_client(info.api_url, info.anon_key).auth.sign_in_with_password(
            {"email": email, "password": PASSWORD}
        )
    assert (signing_in.value.code, signing_in.value.status) == ("user_banned", 400)
    with pytest.raises(AuthApiError) as refreshing:
        client.auth.refresh_session()
    assert refreshing.value.code == "user_banned"

    # An empty duration changes nothing (GoTrue's rule); "none" and a zero one lift the ban.
    kept = admin.auth.admin.update_user_by_id(made.user.id, {"ban_duration": ""})
    assert kept.user.banned_until == banned.user.banned_until
    lifted = admin.auth.admin.update_user_by_id(made.user.id, {"ban_duration": "none"})
    assert lifted.user.banned_until is None
    # The refresh refused during the ban used nothing up: the same token works now.
    assert client.auth.refresh_session().session is not None
    admin.auth.admin.update_user_by_id(made.user.id, {"ban_duration": "24h"})
    assert admin.auth.admin.update_user_by_id(made.user.id, {"ban_duration": "0s"}).user.banned_until is None
    assert client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session is not None


def test_an_admin_may_create_a_banned_user(stack: LocalStack) -> None:
    info = stack.info()
    admin = supabase_client(info.api_url, info.service_role_key)
    email = unique_email("born-banned")
    admin.auth.admin.create_user(
        {"email": email, "password": PASSWORD, "email_confirm": True, "ban_duration": "24h"}
    )
    with pytest.raises(AuthApiError) as signing_in:
        supabase_client(info.api_url, info.anon_key).auth.sign_in_with_password(
            {"email": email, "password": PASSWORD}
        )
    assert signing_in.value.code == "user_banned"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"ban_duration": "forever"}, 'invalid duration "forever"'),
        ({"ban_duration": "1e400h"}, "invalid duration"),
        ({"ban_duration": "99999999999999h"}, "invalid duration"),
        ({"ban_duration": 24}, "must be a string"),
        ({"role": "service_role"}, "role authenticated"),
        ({"role": ["authenticated"]}, "role authenticated"),
    ],
)
def test_a_ban_or_role_the_stack_cannot_apply_is_refused_and_changes_nothing(
    stack: LocalStack, change: dict[str, object], says: str
) -> None:
    info = stack.info()
    admin = supabase_client(info.api_url, info.service_role_key)
    email = unique_email("unchanged")
    made = admin.auth.admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True})
    before = _user_row(stack, email)
    with pytest.raises(AuthApiError) as updating:
        admin.auth.admin.update_user_by_id(made.user.id, change)  # type: ignore[arg-type]
    assert (updating.value.status, updating.value.code) == (400, "validation_failed")
    assert says in updating.value.message
    assert _user_row(stack, email) == before
    other = unique_email("never-made")
    with pytest.raises(AuthApiError) as creating:
        admin.auth.admin.create_user({"email": other, "password": PASSWORD, **change})  # type: ignore[typeddict-item]
    assert creating.value.status == 400 and says in creating.value.message
    assert _user_row(stack, other) is None
    # The role everyone has is taken as it is.
    same = admin.auth.admin.update_user_by_id(made.user.id, {"role": "authenticated"})
    assert same.user.role == "authenticated"
