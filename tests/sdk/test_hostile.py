"""Hostile input: forged tokens, injection strings, odd unicode, a non-admin on every admin path."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from carbook_sdk import (
    AccessDeniedError,
    Carbook,
    CarbookError,
    Money,
    NewCar,
    NotAuthenticatedError,
    ValidationError,
)
from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PNG, carbook_for, unique_email

from ..helpers import stack_db

PASSWORD = "correct-horse-9"
INJECTIONS = [
    "Robert'); DROP TABLE public.cars;--",
    "' OR '1'='1",
    "x\\'; select pg_sleep(10); --",
    # Right-to-left text is stored as typed; a direction override is refused (it would
    # turn table rows around): tests/cli/test_cli.py checks that refusal.
    "🚗 Ñandú 名前 مرحبا",
    "%00%27 union select * from auth.users --",
]


def _state(stack: LocalStack) -> tuple[Any, ...]:
    with stack_db(stack) as conn:
        return tuple(
            conn.execute(q).fetchall()
            for q in (
                "select * from public.cars order by id",
                "select count(*) from public.audit_logs",
                "select * from public.user_roles order by 1",
                "select bucket_id, name from storage.objects order by 1, 2",
                "select count(*) from auth.users",
            )
        )


def test_forged_service_role_and_deleted_users_are_refused(stack: LocalStack) -> None:
    s = stack.settings
    forged = jwt.encode(
        {"role": "service_role", "exp": int(time.time()) + 600}, "not-the-secret-" * 3, algorithm="HS256"
    )
    before = _state(stack)
    for path in ("/rest/v1/user_roles", "/storage/v1/bucket"):
        r = httpx.get(s.api_url + path, headers={"apikey": s.anon_key, "Authorization": f"Bearer {forged}"})
        assert r.status_code == 401
    admin_api = httpx.post(
        f"{s.api_url}/auth/v1/admin/users",
        json={"email": unique_email(), "password": PASSWORD},
        headers={"apikey": s.anon_key, "Authorization": f"Bearer {forged}"},
    )
    assert admin_api.status_code == 403 and admin_api.json()["error_code"] == "bad_jwt"

    # A valid token whose user was deleted since.
    email = unique_email("gone")
    with stack_db(stack) as conn:
        row = conn.execute(
            "insert into public.cars (make, model, year, is_published) values ('Gone', 'Car', 2024, true)"
            " returning id::text"
        ).fetchone()
    assert row is not None
    free_car = row[0]
    with carbook_for(stack) as cb:
        cb.auth.sign_up(email, PASSWORD)
        token = cb.auth.access_token()
        with carbook_for(stack, service=True) as ops:
            ops.admin.delete_user(email)
        before = _state(stack)
        with pytest.raises(NotAuthenticatedError, match="the signed-in user no longer exists"):
            cb.bookings.book(free_car)
        me = httpx.get(
            f"{s.api_url}/auth/v1/user", headers={"apikey": s.anon_key, "Authorization": f"Bearer {token}"}
        )
        assert me.status_code == 403
    assert _state(stack) == before


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_and_unicode_are_stored_literally(stack: LocalStack, text: str) -> None:
    with carbook_for(stack) as admin:
        admin.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        car = admin.cars.create(
            NewCar(make=text[:100] or "x", model=text[-100:] or "x", year=2024, price=Money.of(1, "INR")),
            PNG,
        )
        again = admin.cars.get(car.id)
        assert (again.make, again.model) == (text[:100].strip(), text[-100:].strip())
        with pytest.raises(ValidationError, match="unknown action"):  # checked, never SQL
            admin.audit.list(action=text)
        assert admin.audit.list(car_id=again.id, action="car.insert")[0].record_id == again.id
    with stack_db(stack) as conn:
        assert conn.execute("select to_regclass('public.cars')").fetchone() == ("cars",)


def test_a_non_admin_is_refused_on_every_admin_path(stack: LocalStack) -> None:
    s = stack.settings
    car = "3e5a9c3d-4b7d-4f2e-9a63-5d8e7c000003"
    with carbook_for(stack) as user:
        user.auth.sign_up(unique_email("nosy"), PASSWORD)
        token = user.auth.access_token()
        before = _state(stack)
        sdk_calls = [
            lambda: user.cars.create(NewCar(make="A", model="B", year=2024, price=Money.of(1, "INR")), PNG),
            lambda: user.cars.update(car, model="Mine"),
            lambda: user.cars.publish(car),
            lambda: user.cars.unpublish(car),
            lambda: user.cars.replace_image(car, PNG),
            lambda: user.cars.list_all(),
            lambda: user.cars.by_refs(["x"]),
            lambda: user.images.upload(PNG),
            lambda: user.audit.list(),
        ]
        for call in sdk_calls:
            with pytest.raises(AccessDeniedError):
                call()
    headers = {"apikey": s.anon_key, "Authorization": f"Bearer {token}", "Prefer": "return=representation"}
    raw = [
        ("POST", "/rest/v1/cars", {"make": "A", "model": "B", "year": 2024}, {403}),
        ("PATCH", f"/rest/v1/cars?id=eq.{car}", {"booking_status": "booked"}, {200}),  # RLS: zero rows
        # Admins may delete available cars (20250922000000): for anyone else RLS matches no row.
        ("DELETE", "/rest/v1/cars?id=not.is.null", None, {200}),
        ("POST", "/rest/v1/user_roles", {"user_id": str(uuid.uuid4()), "role": "admin"}, {403}),
        ("PATCH", "/rest/v1/audit_logs?id=gt.0", {"action": "forged"}, {403}),
        ("POST", "/rest/v1/audit_logs", {"action": "forged", "table_name": "cars"}, {403}),
        ("POST", "/auth/v1/admin/users", {"email": unique_email(), "password": PASSWORD}, {403}),
        ("POST", "/storage/v1/bucket", {"id": "mine", "name": "mine"}, {400}),
    ]
    for method, path, body, codes in raw:
        r = httpx.request(method, s.api_url + path, json=body, headers=headers)
        assert r.status_code in codes, (method, path, r.status_code, r.text)
        if r.status_code == 200:
            assert r.json() == []
    assert _state(stack) == before


def test_cli_arguments_are_never_sql(stack: LocalStack, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from carbook_cli import app

    env = {
        "SUPABASE_URL": stack.settings.api_url,
        "SUPABASE_ANON_KEY": stack.settings.anon_key,
        "CARBOOK_CONFIG_DIR": str(tmp_path),
    }
    before = _state(stack)
    runner = CliRunner()
    for text in INJECTIONS:
        for args in (["cars", "show", text], ["book", text], ["cars", "list", "--cursor", text]):
            result = runner.invoke(app, args, env=env)
            assert result.exit_code in (3, 12), (args, result.output)
    assert _state(stack) == before


def test_sdk_is_not_fooled_by_a_car_id_in_a_query_string(stack: LocalStack) -> None:
    with Carbook(stack.settings.api_url, stack.settings.anon_key) as anon:
        for bad in ("1e5a9c1d-4b7d-4f2e-9a63-5d8e7c000001&select=*", "eq.1", "id=eq.x"):
            with pytest.raises(CarbookError, match="not a valid car id"):
                anon.cars.get(bad)


def test_cli_text_fields_are_stored_literally_or_refused(stack: LocalStack, tmp_path: Any) -> None:
    """Injection strings in every free-text CLI field: a car's make and model (typed and
    imported), audit filters and the sign-in email. Stored exactly as given, or refused
    with exit 3 and nothing changed; never executed."""
    import csv as csv_module

    from typer.testing import CliRunner

    from carbook_cli import app

    env = {
        "SUPABASE_URL": stack.settings.api_url,
        "SUPABASE_ANON_KEY": stack.settings.anon_key,
        "CARBOOK_CONFIG_DIR": str(tmp_path / "config"),
        "COLUMNS": "200",
    }
    runner = CliRunner()
    image = tmp_path / "car.png"
    image.write_bytes(PNG)
    admin_login = ["auth", "login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD]
    assert runner.invoke(app, admin_login, env=env).exit_code == 0
    for text in [*INJECTIONS, "nul\x00byte", "tab\tand\nnewline"]:
        before = _state(stack)
        added = runner.invoke(
            app,
            ["cars", "add", "--make", text, "--model", text, "--year", "2024", "--price", "1.00",
             "--currency", "INR", "--image", str(image), "--json"],
            env=env,
        )  # fmt: skip
        if added.exit_code == 0:
            car_id = json.loads(added.stdout)["id"]
            with stack_db(stack) as conn:
                row = conn.execute("select make, model from public.cars where id = %s", (car_id,)).fetchone()
            assert row == (text, text)
        else:
            assert added.exit_code == 3, (text, added.output)
            assert _state(stack) == before
        before = _state(stack)
        audit = runner.invoke(app, ["audit", "list", "--action", text, "--json"], env=env)
        assert audit.exit_code in (0, 3), audit.output
        if audit.exit_code == 0:
            assert json.loads(audit.stdout) == {"items": [], "next_cursor": None}
        login = runner.invoke(app, ["auth", "login", "--email", text, "--password", "whatever-123"], env=env)
        assert login.exit_code in (3, 12), login.output
        assert runner.invoke(app, admin_login, env=env).exit_code == 0
        assert _state(stack) == before

    sheet = tmp_path / "import.csv"
    with sheet.open("w", newline="") as f:
        writer = csv_module.writer(f)
        writer.writerow(["ref", "make", "model", "year", "price", "currency", "image"])
        for i, text in enumerate(INJECTIONS):
            writer.writerow(
                [f"INJ-{uuid.uuid4().hex[:8]}-{i}", text, text, "2024", "1.00", "INR", image.name]
            )
    result = runner.invoke(
        app, ["cars", "import", str(sheet), "--images-dir", str(tmp_path), "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    ids = [entry["id"] for entry in json.loads(result.stdout)["imported"]]
    with stack_db(stack) as conn:
        stored = conn.execute(
            "select make, model from public.cars where id = any(%s::uuid[])", (ids,)
        ).fetchall()
        assert conn.execute("select to_regclass('public.cars') is not null").fetchone() == (True,)
    assert sorted(stored) == sorted((t, t) for t in INJECTIONS)
