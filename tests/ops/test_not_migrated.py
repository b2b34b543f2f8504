"""A rolled-back (or never migrated) schema is one clear error for the SDK calls and CLI
commands that need carbook's objects: never a raw "does not exist"."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError
from typer.testing import CliRunner

from carbook_cli import app
from carbook_sdk import Database, Money, NewCar, NotMigratedError
from carbook_sdk._translate import translate
from carbook_sdk.errors import DatabaseError, ValidationError
from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, carbook_for, unique_email

from ..helpers import stack_db

runner = CliRunner()
IMAGE = Path(__file__).resolve().parents[2] / "supabase" / "images" / "sample-car.png"


def _everything(stack: LocalStack) -> tuple[Any, ...]:
    """Every car row, stored object and audit entry, to compare before and after."""
    with stack_db(stack) as conn:
        return (
            conn.execute("select to_jsonb(c) from public.cars c order by id").fetchall(),
            conn.execute("select bucket_id, name from storage.objects order by 1, 2").fetchall(),
            conn.execute("select count(*) from public.audit_logs").fetchone(),
        )


PASSWORD = "correct-horse-9"
LINE = "Error: The database is not migrated: run `carbook db migrate`."


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("42703", "column cars.booking_status does not exist", NotMigratedError),
        ("42883", "function public.book_car_atomic(car_id => uuid) does not exist", NotMigratedError),
        (
            "PGRST202",
            "Could not find the function public.book_car_atomic(car_id) in the schema cache",
            NotMigratedError,
        ),
        (
            "PGRST204",
            "Could not find the 'price_in_paise' column of 'cars' in the schema cache",
            NotMigratedError,
        ),
        ("PGRST204", "Column 'currency' of relation 'cars' does not exist", NotMigratedError),
        ("42P01", 'relation "public.cars" does not exist', NotMigratedError),
        # Not carbook's own objects: a bug to report, not a schema to migrate.
        ("42703", "column cars.colour does not exist", DatabaseError),
        ("42883", "operator does not exist: uuid = text", DatabaseError),
        ("PGRST204", "Could not find the 'colour' column of 'cars' in the schema cache", ValidationError),
        ("PGRST204", "Column 'colour' of relation 'cars' does not exist", ValidationError),
    ],
)
def test_what_counts_as_not_migrated(code: str, message: str, expected: type[Exception]) -> None:
    err = translate(APIError({"code": code, "message": message, "hint": None, "details": None}))
    assert type(err) is expected
    if expected is NotMigratedError:
        assert str(err) == "The database is not migrated: run `carbook db migrate`."


def _rest_knows_booking(stack: LocalStack) -> bool:
    """Whether PostgREST's schema cache (its OpenAPI root) lists the booking function."""
    s = stack.settings
    reply = httpx.get(f"{s.api_url}/rest/v1/", headers={"apikey": s.secret_key})
    assert reply.status_code == 200, reply.text
    return "/rpc/book_car_atomic" in reply.json()["paths"]


def _user_can_call_booking(stack: LocalStack, token: str | None) -> bool:
    s = stack.settings
    reply = httpx.post(
        f"{s.api_url}/rest/v1/rpc/book_car_atomic",
        json={"car_id": str(uuid.uuid4())},
        headers={"apikey": s.publishable_key, "Authorization": f"Bearer {token}"},
    )
    return reply.status_code == 200 and reply.json()["code"] == "not_found"


def _eventually(check: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_between_rollback_and_migrate_every_call_says_not_migrated(
    own_stack: LocalStack, tmp_path: Path
) -> None:
    own_stack.start()
    s = own_stack.settings
    with stack_db(own_stack) as conn:
        row = conn.execute(
            "select id from public.cars where is_published and booking_status = 'available' limit 1"
        ).fetchone()
    assert row is not None
    car = str(row[0])
    email = unique_email("unmigrated")
    env = {
        "SUPABASE_URL": s.api_url,
        "SUPABASE_ANON_KEY": s.anon_key,
        "SUPABASE_DB_URL": s.db_url,
        "CARBOOK_CONFIG_DIR": str(tmp_path / "config"),
    }

    def cli(*args: str) -> Any:
        return runner.invoke(app, list(args), env=env)

    with (
        carbook_for(own_stack) as user,
        carbook_for(own_stack) as anon,
        carbook_for(own_stack) as admin,
    ):
        admin.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        user.auth.sign_up(email, PASSWORD)
        assert cli("auth", "login", "--email", email, "--password", PASSWORD).exit_code == 0
        database = Database(s.db_url)
        assert _rest_knows_booking(own_stack)
        database.rollback(force=True, backup_dir=tmp_path / "backups")
        # PostgREST was told to reload its schema cache: the function is gone from it too.
        assert _eventually(lambda: not _rest_knows_booking(own_stack))

        for call in (
            anon.cars.list_available,
            user.cars.list_available,
            user.cars.mine,
            lambda: user.bookings.book(car),
            # An admin sees every column: none may come back as a made-up default.
            admin.cars.list_all,
            lambda: admin.cars.get(car),
        ):
            with pytest.raises(NotMigratedError):
                call()
        for args in (("cars", "list"), ("book", car), ("bookings", "mine")):
            result = cli(*args)
            assert (result.exit_code, result.stdout, result.stderr.strip()) == (8, "", LINE), args

        # Every write too: refused, and nothing written (no row, no image, no audit entry).
        before = _everything(own_stack)
        image = IMAGE.read_bytes()
        csv = tmp_path / "cars.csv"
        csv.write_text("ref,make,model,year,price,currency,image\nnm-1,Tata,Punch,2024,799.00,INR,car.png\n")
        (tmp_path / "car.png").write_bytes(image)
        for write in (
            lambda: admin.cars.create(
                NewCar(make="Tata", model="Punch", year=2024, price=Money.of("799.00", "INR")), image
            ),
            lambda: admin.cars.update(car, price=Money.of("1.00", "INR")),
            lambda: admin.cars.update(car, make="Renamed"),
            lambda: admin.cars.publish(car),
            lambda: admin.cars.unpublish(car),
            lambda: admin.cars.import_csv(csv, tmp_path),
        ):
            with pytest.raises(NotMigratedError):
                write()
            assert _everything(own_stack) == before
        admin_cli = {**env, "CARBOOK_CONFIG_DIR": str(tmp_path / "admin-config")}
        assert (
            runner.invoke(
                app, ["auth", "login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD], env=admin_cli
            ).exit_code
            == 0
        )
        for args in (
            (
                "cars",
                "add",
                "--make",
                "Tata",
                "--model",
                "Punch",
                "--year",
                "2024",
                "--price",
                "799",
                "--image",
                str(IMAGE),
            ),
            ("cars", "update", car, "--price", "1.00"),
            ("cars", "update", car, "--model", "Renamed"),
            ("cars", "publish", car),
            ("cars", "unpublish", car),
            ("cars", "import", str(csv), "--images-dir", str(tmp_path)),
        ):
            result = runner.invoke(app, list(args), env=admin_cli)
            assert result.exit_code == 8, (args, result.output)
            assert LINE in result.stderr, (args, result.stderr)
            assert _everything(own_stack) == before, args

        assert database.migrate(backup_dir=tmp_path / "backups").restored is not None
        # The reload takes a moment (its routes and its OpenAPI are not swapped at once).
        assert _eventually(lambda: _user_can_call_booking(own_stack, user.auth.access_token()))
        assert car in {str(c.id) for c in user.cars.list_available(limit=100).items}
        assert user.bookings.book(car).code == "booked"
