"""The seed's front end is written with supabase-js: the same client, run by Node against
the local stack, with the publishable key and nothing of carbook's. `scripts/test.sh`
installs the pinned supabase-js (tests/js/package.json) before the suite runs."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PNG

from ..helpers import PASSWORD, make_cars, make_users, stack_db

JS = Path(__file__).resolve().parents[1] / "js"


def test_a_supabase_js_front_end_runs_unchanged(stack: LocalStack) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed: scripts/test.sh installs it with supabase-js"
    assert (JS / "node_modules" / "@supabase" / "supabase-js").is_dir(), (
        "supabase-js is not installed: run `npm install --prefix tests/js` (scripts/test.sh does)"
    )
    s = stack.settings
    (car,) = make_cars(stack, 1, f"js-{uuid.uuid4().hex[:6]}")
    run = uuid.uuid4().hex[:10]
    result = subprocess.run(
        [node, str(JS / "client_flow.mjs")],
        cwd=JS,
        env={
            "PATH": os.environ.get("PATH", ""),
            "API_URL": s.api_url,
            "PUBLISHABLE_KEY": s.publishable_key,
            "SECRET_KEY": s.secret_key,
            "CAR_ID": car,
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PNG_BASE64": base64.b64encode(PNG).decode(),
            "RUN": run,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert "failed" not in out, out
    assert out["identities"] == ["email"]
    assert out["claims"] == {
        "sub": out["user_id"],
        "role": "authenticated",
        "alg": "ES256",
        "kid": s.keys().kid,
    }
    assert out["listed"] == [car]
    assert (out["booked"]["success"], out["booked"]["code"], out["booked"]["booked_by"]) == (
        True,
        "booked",
        out["user_id"],
    )
    assert (out["lost"]["success"], out["lost"]["code"]) == (False, "already_booked")
    assert out["lost"]["message"] == "Already booked. Be fast next time."
    assert out["anonymous_error"] == {"code": "anonymous_provider_disabled", "status": 422}
    assert out["uploaded_path"] == f"js/{run}.png" and out["reuse_refused"] is True
    assert out["public"] == {"status": 200, "same": True, "type": "image/png"}
    assert out["secret_from_node"] == {"users": 1}
    with stack_db(stack) as conn:
        row = conn.execute("select booked_by::text from public.cars where id = %s", (car,)).fetchone()
        objects = conn.execute(
            "select count(*) from storage.objects where bucket_id = 'car-images' and name = %s",
            (f"js/{run}.png",),
        ).fetchone()
    assert row == (out["user_id"],) and objects == (1,)


def test_supabase_js_realtime_hears_a_booking_and_two_clients_broadcast_and_see_presence(
    stack: LocalStack,
) -> None:
    """supabase-js as pinned, on its default protocol (vsn 2.0.0, binary broadcast frames):
    a visitor's listing on the private `cars:availability` topic hears the booking once,
    carrying what any visitor may know; two clients in a room broadcast both ways (JSON
    and raw bytes, acknowledged) and each sees the other's Presence, then its leave."""
    node = shutil.which("node")
    assert node, "Node.js is needed: scripts/test.sh installs it with supabase-js"
    s = stack.settings
    (car,) = make_cars(stack, 1, f"jsrt-{uuid.uuid4().hex[:6]}")
    result = subprocess.run(
        [node, str(JS / "realtime_flow.mjs")],
        cwd=JS,
        env={
            "PATH": os.environ.get("PATH", ""),
            "API_URL": s.api_url,
            "PUBLISHABLE_KEY": s.publishable_key,
            "CAR_ID": car,
            "RUN": uuid.uuid4().hex[:10],
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert "failed" not in out, out
    assert out["vsn"] == "2.0.0" and out["booking"] == "booked"
    (heard,) = out["heard"]
    assert heard["event"] == "booked"
    assert {k: heard["payload"][k] for k in ("id", "kind", "listed", "status")} == {
        "id": car,
        "kind": "booked",
        "listed": False,
        "status": "booked",
    }
    assert "booked_by" not in heard["payload"]
    assert out["track"] == ["ok", "ok"] and out["sent"] == ["ok", "ok", "ok"]
    assert out["presence"] == {"a": ["a", "b"], "b": ["a", "b"]} and out["presence_meta"] == car
    assert out["got"] == {"a": [{"from": "b", "n": 2}], "b": [{"from": "a", "n": 1}, [0, 1, 2, 255]]}
    assert out["after_leave"] == ["b"]
    assert out["rest"] == ["ok", {"success": True}]
    rest = [{"from": "rest", "n": 3}, {"from": "http", "n": 4}]
    assert out["rest_got"] == {"a": rest, "b": rest}
    assert out["private_rest"] == "Unauthorized" and out["heard_after_private_rest"] == 0


def test_supabase_js_hears_postgres_changes_by_event_and_filter_and_never_a_hidden_row(
    stack: LocalStack,
) -> None:
    """supabase-js as pinned binds postgres_changes without a mismatch, each binding hears
    exactly its events (the ids Realtime lists), and a signed-in user never hears of the
    unpublished car an admin made, only of its delete (its key: deletes are not RLS-checked)."""
    node = shutil.which("node")
    assert node, "Node.js is needed: scripts/test.sh installs it with supabase-js"
    s = stack.settings
    run = uuid.uuid4().hex[:10]
    (car,) = make_cars(stack, 1, f"jspc-{run}")
    ((_, email),) = make_users(stack, 1, f"jspc-{run}")
    result = subprocess.run(
        [node, str(JS / "changes_flow.mjs")],
        cwd=JS,
        env={
            "PATH": os.environ.get("PATH", ""),
            "API_URL": s.api_url,
            "PUBLISHABLE_KEY": s.publishable_key,
            "CAR_ID": car,
            "RUN": run,
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "USER_EMAIL": email,
            "USER_PASSWORD": PASSWORD,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert "failed" not in out, out
    heard, hidden = out["heard"], out["hidden"]
    seen = {label: [(e["type"], e["key"]) for e in events] for label, events in heard.items()}
    assert out["status"][:2] == ["SUBSCRIBED", "SUBSCRIBED"]  # then CLOSED, by removeAllChannels
    assert seen["ins"] == [("INSERT", f"{run}-x"), ("INSERT", f"{run}-s")]
    assert seen["upd"] == [("UPDATE", f"jspc-{run}-1")]
    assert seen["del"] == [("DELETE", hidden)]
    assert seen["all"] == [("INSERT", f"{run}-x")]  # its delete carries the key only: no model to match
    assert seen["user"] == [("UPDATE", f"jspc-{run}-1"), ("DELETE", hidden), ("INSERT", f"{run}-s")]
    update = heard["upd"][0]
    assert update["new"]["price_in_paise"] == 123400 and update["old"] == {"id": car}
    assert heard["user"][1]["old"] == {"id": hidden}
    assert isinstance(heard["ins"][0]["new"]["year"], int) and heard["ins"][0]["new"]["is_published"] is False


def test_supabase_js_signs_in_with_a_code_from_the_local_mailbox(stack: LocalStack) -> None:
    """`signInWithOtp` and `resetPasswordForEmail`, as a front end calls them: the stack's
    mailbox gets GoTrue's messages, and the code signs the stranger up and in."""
    from carbook_stack.mailbox import read_mail

    node = shutil.which("node")
    assert node, "Node.js is needed: scripts/test.sh installs it with supabase-js"
    s = stack.settings
    email = f"js-mail-{uuid.uuid4().hex[:10]}@example.test"

    def step(name: str, **extra: str) -> dict[str, object]:
        env = {"PATH": os.environ.get("PATH", ""), "API_URL": s.api_url, "PUBLISHABLE_KEY": s.publishable_key}
        env |= {"EMAIL": email, "STEP": name, "REDIRECT": f"{s.site_url}/welcome", **extra}
        result = subprocess.run(
            [node, str(JS / "mail_flow.mjs")], cwd=JS, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        out: dict[str, object] = json.loads(result.stdout)
        assert "failed" not in out, out
        return out

    asked = step("request")
    assert asked["stranger_error"] == {"code": "otp_disabled", "status": 422}
    recovery, signup = read_mail(stack, to=email)  # newest first
    assert (signup.kind, recovery.kind) == ("signup", "recovery")
    assert signup.redirect_to == f"{s.site_url}/welcome"
    done = step("verify", CODE=signup.otp)
    assert done == {"user_email": email, "confirmed": True, "has_session": True}
