"""Auth's mail without a mail server, through supabase-py's own calls: ``sign_in_with_otp``,
``reset_password_for_email`` and ``resend`` put GoTrue's messages in the local mailbox
(``carbook stack mail``), and their codes and links sign people in."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from supabase_auth.errors import AuthApiError

from carbook_stack.mailbox import read_mail
from carbook_stack.manager import LocalStack
from tests.helpers import stack_db, supabase_client, unique_email


def _users(stack: LocalStack, email: str) -> int:
    with stack_db(stack) as conn:
        row = conn.execute(
            "select count(*) from auth.users where lower(email) = lower(%s)", (email,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_code_by_mail_signs_up_a_stranger_and_signs_them_in(stack: LocalStack) -> None:
    s = stack.settings
    email = unique_email("otp")
    client = supabase_client(s.api_url, s.anon_key)
    client.auth.sign_in_with_otp({"email": email, "options": {"data": {"name": "Asha"}}})
    (mail,) = read_mail(stack, to=email)
    assert (mail.kind, mail.subject) == ("signup", "Confirm Your Signup")
    assert len(mail.otp) == 6 and mail.otp.isdigit() and mail.redirect_to == s.site_url
    done = client.auth.verify_otp({"email": email, "token": mail.otp, "type": "email"})
    assert done.session is not None and done.user is not None
    assert done.user.email_confirmed_at is not None and done.user.user_metadata == {"name": "Asha"}
    # A second code for the now-known address is a magic link, and its link signs in too.
    client.auth.sign_in_with_otp({"email": email})
    newest = read_mail(stack, to=email)[0]
    assert (newest.kind, newest.subject) == ("magiclink", "Your Magic Link")
    reply = httpx.get(newest.link, follow_redirects=False)
    assert reply.status_code == 303
    fragment = parse_qs(urlsplit(reply.headers["location"]).fragment)
    assert fragment["type"] == ["magiclink"] and fragment["access_token"]


def test_a_password_reset_by_mail_lets_the_user_choose_a_new_one(stack: LocalStack) -> None:
    s = stack.settings
    email = unique_email("reset")
    client = supabase_client(s.api_url, s.anon_key)
    client.auth.sign_up({"email": email, "password": "old-password-1"})
    client.auth.sign_out()
    client.auth.reset_password_for_email(email, {"redirect_to": f"{s.site_url}/reset"})
    (mail,) = read_mail(stack, to=email)
    assert (mail.kind, mail.subject, mail.redirect_to) == (
        "recovery",
        "Reset Your Password",
        f"{s.site_url}/reset",
    )
    done = client.auth.verify_otp({"email": email, "token": mail.otp, "type": "recovery"})
    assert done.session is not None
    client.auth.update_user({"password": "new-password-2"})
    client.auth.sign_out()
    assert client.auth.sign_in_with_password({"email": email, "password": "new-password-2"}).session


def test_no_mail_for_an_address_without_an_account_and_no_word_of_it(stack: LocalStack) -> None:
    s = stack.settings
    client = supabase_client(s.api_url, s.anon_key)
    stranger = unique_email("stranger")
    client.auth.reset_password_for_email(stranger)  # answered as for anyone: no enumeration
    client.auth.resend({"type": "signup", "email": stranger})
    assert read_mail(stack, to=stranger) == []
    with pytest.raises(AuthApiError) as refused:
        client.auth.sign_in_with_otp({"email": stranger, "options": {"should_create_user": False}})
    assert (refused.value.code, refused.value.status) == ("otp_disabled", 422)
    assert _users(stack, stranger) == 0 and read_mail(stack, to=stranger) == []


def test_resend_repeats_the_confirmation_only_while_it_is_pending(stack: LocalStack) -> None:
    s = stack.settings
    email = unique_email("resend")
    client = supabase_client(s.api_url, s.anon_key)
    client.auth.sign_in_with_otp({"email": email})
    first = read_mail(stack, to=email)[0]
    client.auth.resend({"type": "signup", "email": email})
    second = read_mail(stack, to=email)[0]
    assert second.id > first.id and second.kind == "signup"
    # The new code is the good one: the first is void.
    with pytest.raises(AuthApiError):
        client.auth.verify_otp({"email": email, "token": first.otp, "type": "email"})
    assert client.auth.verify_otp({"email": email, "token": second.otp, "type": "email"}).session
    client.auth.resend({"type": "signup", "email": email})  # confirmed now: nothing to resend
    assert read_mail(stack, to=email)[0].id == second.id


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/otp", {"email": "not-an-email"}, "validation_failed"),
        ("/otp", {"email": "a\u0000b@example.test"}, "validation_failed"),
        ("/otp", {"email": "ok@example.test", "create_user": "yes"}, "validation_failed"),
        ("/otp", {"phone": "+15550100"}, "sms_send_failed"),
        ("/recover", {}, "validation_failed"),
        ("/resend", {"type": "email_change", "email": "ok@example.test"}, "validation_failed"),
        ("/resend", {"type": "bogus", "email": "ok@example.test"}, "validation_failed"),
    ],
)
def test_bad_requests_send_nothing(stack: LocalStack, path: str, body: dict[str, object], code: str) -> None:
    s = stack.settings
    before = read_mail(stack, limit=1)
    with stack_db(stack) as conn:
        users = conn.execute("select count(*) from auth.users").fetchone()
    reply = httpx.post(f"{s.api_url}/auth/v1{path}", headers={"apikey": s.anon_key}, json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error_code"] == code
    assert read_mail(stack, limit=1) == before
    with stack_db(stack) as conn:
        assert conn.execute("select count(*) from auth.users").fetchone() == users


def test_a_mail_never_leads_to_another_host(stack: LocalStack) -> None:
    s = stack.settings
    email = unique_email("evil")
    client = supabase_client(s.api_url, s.anon_key)
    client.auth.sign_in_with_otp({"email": email, "options": {"email_redirect_to": "http://evil.example/x"}})
    (mail,) = read_mail(stack, to=email)
    assert mail.redirect_to == s.site_url and "evil.example" not in mail.link


def test_the_cli_shows_the_mailbox(stack: LocalStack) -> None:
    from typer.testing import CliRunner

    from carbook_cli import app

    s = stack.settings
    email = unique_email("cli-mail")
    supabase_client(s.api_url, s.anon_key).auth.sign_in_with_otp({"email": email})
    (mail,) = read_mail(stack, to=email)
    runner = CliRunner()
    shown = runner.invoke(app, ["stack", "mail", "--state-dir", str(s.state_dir), "--to", email, "--json"])
    assert shown.exit_code == 0, shown.output
    (item,) = json.loads(shown.stdout)
    assert (item["to"], item["otp"], item["link"]) == (email, mail.otp, mail.link)
    table = runner.invoke(
        app, ["stack", "mail", "--state-dir", str(s.state_dir), "--to", email], env={"COLUMNS": "250"}
    )
    assert table.exit_code == 0 and mail.otp in table.stdout and "Confirm Your Signup" in table.stdout
    nobody = runner.invoke(
        app, ["stack", "mail", "--state-dir", str(s.state_dir), "--to", unique_email("none")]
    )
    assert nobody.exit_code == 0 and nobody.stdout.startswith("No mail to ")
    bad = runner.invoke(app, ["stack", "mail", "--state-dir", str(s.state_dir), "--limit", "0"])
    assert bad.exit_code == 3 and "must be at least 1" in bad.stderr
    nul = runner.invoke(
        app, ["stack", "mail", "--state-dir", str(s.state_dir), "--to", "a\x00b@example.test"]
    )
    assert nul.exit_code == 3 and nul.stderr.strip() == "Error: --to must be an email address", nul.stderr
