"""The whole life of a car from the CLI — added, published, booked, released, re-booked,
cancelled, deleted — with an audit row for each step; and every new command's bad input
(one line, its exit code, nothing changed)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path

from tests.helpers import stack_db, unique_email

from .conftest import Cli, add_car


def _one_line(result: object) -> str:
    err = str(getattr(result, "stderr", "")).strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for word in ("Error(", "psycopg", "APIError", "constraint", "PGRST"):
        assert word not in err, err
    return err


def test_the_whole_life_of_a_car(cli: Cli, image: Path, tmp_path: Path) -> None:
    cli.login_admin()
    car = add_car(cli, image, "--publish")["id"]
    prefix = car[:8]
    driver = Cli(cli.stack, tmp_path / "driver")
    email = driver.login_new_user()
    assert driver.json("book", prefix)["car_id"] == car  # a unique start of the id is enough

    shown = cli.json("cars", "show", prefix)
    assert shown["booked_by_email"] == email
    table = cli("cars", "show", prefix)
    assert email in table.stdout
    assert email in cli("cars", "list", "--all", "--status", "booked", "--limit", "1000").stdout
    listed = cli.json("cars", "list", "--all", "--status", "booked", "--limit", "1000")
    assert any(c["id"] == car and c["booked_by_email"] == email for c in listed["items"])
    everyone = cli.json("bookings", "list", "--all", "--limit", "1000")
    assert [b["booker_email"] for b in everyone["items"] if b["car_id"] == car] == [email]

    released = cli.json("bookings", "release", prefix, "--reason", "payment failed")
    assert (released["code"], released["reason"]) == ("released", "payment failed")
    assert driver.json("book", car)["code"] == "booked"  # bookable again
    assert driver.json("bookings", "cancel", prefix)["code"] == "cancelled"

    result = cli("cars", "delete", prefix, input="n\n")
    assert result.exit_code == 1 and "Nothing deleted" in result.stderr
    gone = cli.json("cars", "delete", prefix, "--yes")
    assert (gone["deleted"]["id"], gone["image_removed"]) == (car, True)

    audit = cli.json("audit", "list", "--car", car, "--limit", "100")
    assert [r["action"] for r in reversed(audit["items"])] == [
        "car.insert", "car.booked", "car.released", "car.booked", "car.cancelled", "car.delete",
    ]  # fmt: skip


def test_bad_input_changes_nothing(cli: Cli, image: Path, tmp_path: Path) -> None:
    cli.login_admin()
    free = add_car(cli, image, "--publish")["id"]
    taken = add_car(cli, image, "--publish")["id"]
    driver, stranger = Cli(cli.stack, tmp_path / "d"), Cli(cli.stack, tmp_path / "s")
    driver.login_new_user()
    stranger.login_new_user()
    assert driver("book", taken).exit_code == 0
    stem = uuid.uuid4().hex[:8]
    with stack_db(cli.stack) as conn:
        for i in (1, 2):
            conn.execute(
                "insert into public.cars (id, make, model, year, image_path) values (%s, 'K', 'P', 2024, 'x.png')",
                (f"{stem}-{i}{i}{i}{i}-4000-8000-000000000001",),
            )
    before = cli.state()
    cases = [
        (cli, ("bookings", "release", free), 13, "This car is not booked."),
        (stranger, ("bookings", "cancel", taken), 5, "booked by someone else"),
        (stranger, ("bookings", "release", taken), 5, "booked by someone else"),
        (cli, ("cars", "delete", taken, "--yes"), 13, "is booked: release it first"),
        (driver, ("cars", "delete", free, "--yes"), 5, "for admins only"),
        (cli, ("cars", "show", stem), 3, "matches more than one car"),
        (cli, ("cars", "show", "0123456789ab"), 6, "no car id starts with 0123456789ab"),
        (cli, ("cars", "show", "01234"), 3, "too short"),
        (cli, ("audit", "list", "--action", "car.exploded"), 3, "the actions are car.insert, car.update"),
        (cli, ("audit", "list", "--since", "yesterday"), 3, "--since must be a date or time"),
        (cli, ("audit", "list", "--until", "2020-13-01"), 3, "--until must be a date or time"),
        (cli, ("audit", "list", "--cursor", "nonsense"), 3, "not a valid page cursor"),
        (cli, ("bookings", "list", "--all", "--cursor", "nonsense"), 3, "not a valid page cursor"),
        (driver, ("bookings", "list", "--all"), 5, "for admins only"),
        (cli, ("admin", "create-user", "--email", "not-an-email", "--password", "x"), 3, "not a valid email"),
    ]
    for who, args, code, message in cases:
        result = who(*args)
        assert result.exit_code == code, (args, result.output)
        assert message in _one_line(result), (args, result.stderr)
    assert cli.state() == before
    assert driver.json("bookings", "mine")["items"][0]["id"] == taken


def test_audit_pages_by_cursor_and_exports_csv(cli: Cli, image: Path) -> None:
    cli.login_admin()
    car = add_car(cli, image)["id"]
    for _ in range(2):
        assert cli("cars", "publish", car).exit_code == 0
        assert cli("cars", "unpublish", car).exit_code == 0
    assert cli("cars", "unpublish", car).exit_code == 0  # changes nothing: no audit row
    seen: list[int] = []
    page = cli.json("audit", "list", "--car", car, "--limit", "2")
    while True:
        seen += [r["id"] for r in page["items"]]
        if page["next_cursor"] is None:
            break
        page = cli.json("audit", "list", "--car", car, "--limit", "2", "--cursor", page["next_cursor"])
    assert len(seen) == 5 == len(set(seen)) and seen == sorted(seen, reverse=True)  # insert + 4 updates
    table = cli("audit", "list", "--car", car, "--limit", "2")
    assert "--cursor" in table.stdout
    out = cli("audit", "list", "--car", car, "--action", "car.update", "--csv")
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == 4 and {r["action"] for r in rows} == {"car.update"}
    assert all(r["record_id"] == car and json.loads(r["new_data"])["id"] == car for r in rows)


def test_first_admin_and_sign_up_from_the_cli(cli: Cli, tmp_path: Path) -> None:
    email = unique_email("first-admin")
    made = cli.json("admin", "create-user", "--email", email, "--password", "correct-horse-9", "--admin")
    assert made["admin"] is True
    person = Cli(cli.stack, tmp_path / "p")
    assert person.json("auth", "login", "--email", email, "--password", "correct-horse-9")["admin"] is True
    again = cli("admin", "create-user", "--email", email, "--password", "correct-horse-9")
    assert again.exit_code == 13 and "already been registered" in _one_line(again)

    other = unique_email("signup")
    signed = person.subprocess("auth", "signup", "--email", other, "--password", "correct-horse-9", "--json")
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["email"] == other
    taken = person("auth", "signup", "--email", other, "--password", "correct-horse-9")
    assert taken.exit_code == 13 and "already registered" in _one_line(taken)
    assert person("admin", "grant", json.loads(signed.stdout)["id"][:13]).exit_code == 0
