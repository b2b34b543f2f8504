"""Every CLI command against the real stack: happy path, bad input, and nothing changed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PNG

from ..helpers import stack_db
from .conftest import ALREADY, Cli, add_car


# auth -----------------------------------------------------------------------------------
def test_auth_login_whoami_logout(cli: Cli) -> None:
    data = cli.json("auth", "login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
    assert data["email"] == ADMIN_EMAIL and data["admin"] is True
    me = cli.json("auth", "whoami")
    assert me["id"] == data["id"] and me["admin"] is True
    session = Path(me["session_file"])
    assert session.stat().st_mode & 0o777 == 0o600
    assert cli("auth", "logout").exit_code == 0
    after = cli("auth", "whoami")
    assert after.exit_code == 12
    assert "not signed in" in after.stderr


def test_auth_login_with_prompts(cli: Cli) -> None:
    result = cli("auth", "login", input=f"{ADMIN_EMAIL}\n{ADMIN_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert ADMIN_PASSWORD not in result.stdout  # the password prompt does not echo
    assert f"Signed in as {ADMIN_EMAIL} (admin)." in result.stdout


def test_auth_login_bad_input(cli: Cli) -> None:
    wrong = cli("auth", "login", "--email", ADMIN_EMAIL, "--password", "wrong-password")
    assert (wrong.exit_code, wrong.stderr.strip()) == (12, "Error: Invalid email or password.")
    malformed = cli("auth", "login", "--email", "not-an-email", "--password", "x")
    assert malformed.exit_code == 3 and "not a valid email address" in malformed.stderr
    assert not list(Path(cli.env["CARBOOK_CONFIG_DIR"]).glob("sessions/*.json"))


# cars -----------------------------------------------------------------------------------
def test_cars_list_table_matches_json(cli: Cli) -> None:
    data = cli.json("cars", "list", "--limit", "5")
    table = cli("cars", "list", "--limit", "5")
    assert table.exit_code == 0
    ids = re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", table.stdout)
    assert ids == [c["id"] for c in data["items"]]
    for car in data["items"]:
        assert car["is_published"] and car["booking_status"] == "available"
        assert isinstance(car["price_in_paise"], int) and len(car["currency"]) == 3
    nxt = cli.json("cars", "list", "--limit", "5", "--cursor", data["next_cursor"])
    assert not {c["id"] for c in nxt["items"]} & set(ids)


def test_cars_list_bad_input(cli: Cli) -> None:
    cli.login_new_user()
    before = cli.state()
    no_all = cli("cars", "list", "--status", "booked")
    assert no_all.exit_code == 3 and "need --all" in no_all.stderr
    not_admin = cli("cars", "list", "--all")
    assert not_admin.exit_code == 5 and "admins only" in not_admin.stderr
    bad_cursor = cli("cars", "list", "--cursor", "???")
    assert bad_cursor.exit_code == 3 and "not a valid page cursor" in bad_cursor.stderr
    assert cli.state() == before


def test_cars_list_all_filters(cli: Cli, image: Path) -> None:
    cli.login_admin()
    hidden = add_car(cli, image)
    data = cli.json("cars", "list", "--all", "--unpublished", "--limit", "1000")
    assert hidden["id"] in {c["id"] for c in data["items"]}
    assert all(not c["is_published"] for c in data["items"])
    booked = cli.json("cars", "list", "--all", "--status", "booked", "--limit", "1000")
    assert booked["items"] and all(c["booking_status"] == "booked" for c in booked["items"])


def test_cars_show(cli: Cli) -> None:
    listed = cli.json("cars", "list", "--limit", "1")["items"][0]
    shown = cli.json("cars", "show", listed["id"])
    assert shown == listed
    table = cli("cars", "show", listed["id"])
    assert listed["make"] in table.stdout and "price" in table.stdout
    assert cli("cars", "show", "nope").exit_code == 3
    missing = cli("cars", "show", "00000000-0000-4000-8000-00000000dead")
    assert missing.exit_code == 6 and "Car not found" in missing.stderr


def test_cars_add_and_its_bad_input(cli: Cli, image: Path, tmp_path: Path) -> None:
    cli.login_admin()
    car = add_car(cli, image, "--publish", "--ref", "cli-add-1")
    assert (car["price_in_paise"], car["currency"], car["is_published"], car["ref"]) == (
        99950,
        "INR",
        True,
        "cli-add-1",
    )
    table = cli("cars", "show", car["id"])
    assert "₹999.50" in table.stdout

    fake = tmp_path / "fake.png"
    fake.write_text("not a picture")
    before = cli.state()
    cases = [
        (["--price", "-5"], 3, "a price has no sign"),
        (["--price", "1.234"], 3, "has more decimals than INR allows"),
        (["--price", "1,49"], 3, "did you mean 1.49?"),
        (["--price", "1e3"], 3, "not an amount: '1e3'"),
        (["--currency", "IRN"], 3, "unknown currency 'IRN'; did you mean"),
        (["--image", str(fake)], 3, "is not a JPEG, PNG, WEBP image"),
        (["--year", "1700"], 3, "year must be between 1886 and 2100"),
        (["--ref", "bad ref!"], 3, "ref"),
    ]
    for extra, code, message in cases:
        args = {"--price": "10", "--currency": "INR", "--image": str(image), "--year": "2023"}
        for k, v in zip(extra[::2], extra[1::2], strict=True):
            args[k] = v
        flat = [x for kv in args.items() for x in kv]
        result = cli("cars", "add", "--make", "Kia", "--model", "Sonet", *flat)
        assert result.exit_code == code, (extra, result.output)
        assert message in result.stderr, (extra, result.stderr)
    assert cli.state() == before


def test_cars_add_as_non_admin_changes_nothing(cli: Cli, image: Path) -> None:
    cli.login_new_user()
    before = cli.state()
    result = cli(
        "cars",
        "add",
        "--make",
        "Kia",
        "--model",
        "Sonet",
        "--year",
        "2023",
        "--price",
        "10",
        "--image",
        str(image),
    )
    assert result.exit_code == 5
    assert "adding a car is for admins only" in result.stderr
    assert cli.state() == before


def test_cars_update_publish_unpublish(cli: Cli, image: Path, tmp_path: Path) -> None:
    cli.login_admin()
    car = add_car(cli, image)
    updated = cli.json("cars", "update", car["id"], "--price", "1200", "--model", "Sonet X")
    assert (updated["price_in_paise"], updated["currency"], updated["model"]) == (120000, "INR", "Sonet X")
    jpy = cli.json("cars", "update", car["id"], "--price", "15000", "--currency", "JPY")
    assert (jpy["price_in_paise"], jpy["currency"]) == (15000, "JPY")

    new_image = tmp_path / "new.png"
    new_image.write_bytes(PNG + b"new")
    replaced = cli.json("cars", "update", car["id"], "--image", str(new_image))
    assert replaced["image_path"] != car["image_path"]
    with stack_db(cli.stack) as conn:
        names = {r[0] for r in conn.execute("select name from storage.objects")}
    assert replaced["image_path"] in names and car["image_path"] not in names

    assert cli.json("cars", "publish", car["id"])["is_published"] is True
    assert cli.json("cars", "unpublish", car["id"])["is_published"] is False
    assert "Published Kia Sonet X" in cli("cars", "publish", car["id"]).stdout

    before = cli.state()
    for args, code, message in [
        (["--currency", "USD"], 3, "--currency needs --price"),
        (["--year", "1700"], 3, "year must be between 1886 and 2100"),
        ([], 3, "nothing to update"),
        (["--image", str(tmp_path / "missing.png")], 3, "cannot read image"),
    ]:
        result = cli("cars", "update", car["id"], *args)
        assert (result.exit_code, message in result.stderr) == (code, True), (args, result.output)
    for command in ("publish", "unpublish", "update"):
        bad = cli("cars", command, "not-a-uuid", *(["--model", "x"] if command == "update" else []))
        assert bad.exit_code == 3 and "not a valid car id" in bad.stderr
    assert cli.state() == before


def _write_import(folder: Path, n: int, bad: dict[int, dict[str, str]]) -> Path:
    images = folder / "images"
    images.mkdir(exist_ok=True)
    (images / "car.png").write_bytes(PNG)
    (images / "text.png").write_text("not an image")
    rows = ["ref,make,model,year,price,currency,image,published"]
    for i in range(n):
        values = {
            "ref": f"fleet-{folder.name}-{i:03d}",
            "make": "Maruti",
            "model": f"Model {i}",
            "year": "2022",
            "price": f"{1000 + i}.50",
            "currency": "INR",
            "image": "car.png",
            "published": "true" if i % 2 else "false",
        }
        values.update(bad.get(i, {}))
        rows.append(",".join(values.values()))
    path = folder / "cars.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cars_import_validates_everything_first_then_is_idempotent(cli: Cli, tmp_path: Path) -> None:
    cli.login_admin()
    folder = tmp_path / "imp"
    folder.mkdir()
    bad = {4: {"price": "-1"}, 17: {"image": "text.png"}, 33: {"currency": "XXX1"}}
    csv_path = _write_import(folder, 50, bad)
    before = cli.state()
    result = cli("cars", "import", str(csv_path), "--images-dir", str(folder / "images"))
    assert result.exit_code == 3
    for line in (6, 19, 35):  # data row i is on line i + 2
        assert re.search(rf"│\s+{line} │", result.stderr), result.stderr
    assert "3 bad row(s)" in result.stderr and "nothing was imported" in result.stderr
    assert cli.state() == before

    fixed = _write_import(folder, 50, {})
    first = cli.json(
        "cars", "import", str(fixed), "--images-dir", str(folder / "images"), "--concurrency", "8"
    )
    assert (len(first["imported"]), len(first["skipped"]), first["failed"]) == (50, 0, [])
    second = cli("cars", "import", str(fixed), "--images-dir", str(folder / "images"))
    assert second.exit_code == 0
    assert re.search(r"imported\s+│\s+0", second.stdout) and re.search(
        r"already imported\)\s+│\s+50", second.stdout
    )
    with stack_db(cli.stack) as conn:
        count = conn.execute(
            "select count(*) from public.cars where ref like %s", (f"fleet-{folder.name}-%",)
        )
        assert count.fetchone() == (50,)


def test_cars_import_bad_files(cli: Cli, tmp_path: Path) -> None:
    cli.login_admin()
    before = cli.state()
    missing = cli("cars", "import", str(tmp_path / "nope.csv"), "--images-dir", str(tmp_path))
    assert missing.exit_code == 3 and "cannot read" in missing.stderr
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("name,price\nx,1\n")
    columns = cli("cars", "import", str(wrong), "--images-dir", str(tmp_path))
    assert (
        columns.exit_code == 3 and "lacks column(s) ref, make, model, year, currency, image" in columns.stderr
    )
    assert cli.state() == before


# booking ----------------------------------------------------------------------------------
def test_book_mine_and_the_lost_race(cli: Cli, image: Path, stack: LocalStack, tmp_path: Path) -> None:
    cli.login_admin()
    car = add_car(cli, image, "--publish")
    cli.login_new_user()
    booked = cli("book", car["id"])
    assert booked.exit_code == 0 and "Booked" in booked.stdout
    again = cli("book", car["id"])
    assert again.exit_code == 0 and "You had already booked car" in again.stdout
    mine = cli.json("bookings", "mine")
    assert [c["id"] for c in mine["items"]] == [car["id"]] and mine["next_cursor"] is None
    assert car["id"] in cli("bookings", "mine").stdout

    other = Cli(stack, tmp_path / "other-config")
    other.login_new_user()
    before = other.state()
    lost = other("book", car["id"])
    assert (lost.exit_code, lost.stderr.strip(), lost.stdout) == (7, ALREADY, "")
    assert other.state()[:3] == before[:3]


def test_book_bad_input(cli: Cli) -> None:
    before = cli.state()
    signed_out = cli("book", "1e5a9c1d-4b7d-4f2e-9a63-5d8e7c000001")
    assert signed_out.exit_code == 12 and "sign in first" in signed_out.stderr
    cli.login_new_user()
    before = cli.state()
    assert cli("book", "not-a-car").exit_code == 3
    unknown = cli("book", "00000000-0000-4000-8000-00000000dead")
    assert unknown.exit_code == 6 and "Car not found" in unknown.stderr
    unpublished = cli("book", "7e5a9c7d-4b7d-4f2e-9a63-5d8e7c000007")
    assert unpublished.exit_code == 6 and "not available for booking" in unpublished.stderr
    assert cli.state() == before


def test_race(cli: Cli, image: Path) -> None:
    cli.login_admin()
    car = add_car(cli, image, "--publish")
    data = cli.json("race", car["id"][:8], "--clients", "8")  # a prefix, as every command takes
    assert (data["winners"], data["losers"], data["errors"]) == (1, 7, 0)
    assert {r["message"] for r in data["results"] if r["code"] == "already_booked"} == {ALREADY}
    table = cli("race", car["id"], "--clients", "3")  # already taken: everybody loses
    assert table.exit_code == 7
    assert table.stdout.count(ALREADY) == 3 and "Winners: 0" in table.stdout
    assert f"Nobody won: car {car['id']} was already booked." in table.stderr


def test_race_bad_input_creates_no_users(cli: Cli) -> None:
    before = cli.state()
    assert cli("race", "nope").exit_code == 3
    unknown = cli("race", "00000000-0000-4000-8000-00000000dead", "--clients", "3")
    assert unknown.exit_code == 6
    too_few = cli("race", "00000000-0000-4000-8000-00000000dead", "--clients", "1")
    assert too_few.exit_code == 3  # an invalid value, not the command line's shape
    assert cli.state() == before


# audit and admin ----------------------------------------------------------------------------
def test_audit_list(cli: Cli, image: Path) -> None:
    cli.login_admin()
    car = add_car(cli, image)
    cli("cars", "publish", car["id"])
    rows = cli.json("audit", "list", "--car", car["id"], "--actor", ADMIN_EMAIL)["items"]
    assert [r["action"] for r in rows] == ["car.update", "car.insert"]
    since = cli.json("audit", "list", "--since", "2000-01-01", "--limit", "2")["items"]
    assert len(since) == 2
    table = cli("audit", "list", "--car", car["id"])
    assert "car.insert" in table.stdout and "is_published: False → True" in table.stdout
    cli.login_new_user()
    before = cli.state()
    bad = cli("audit", "list", "--since", "yesterday")
    assert bad.exit_code == 3 and "--since must be a date" in bad.stderr
    assert cli("audit", "list", "--car", "nope").exit_code == 3
    denied = cli("audit", "list")
    assert denied.exit_code == 5 and "admins only" in denied.stderr
    assert cli.state() == before


def test_admin_grant_and_revoke(cli: Cli) -> None:
    email = cli.login_new_user()
    assert cli.json("auth", "whoami")["admin"] is False
    assert cli.json("admin", "grant", email)["admin"] is True
    cli("auth", "login", "--email", email, "--password", "correct-horse-9")
    assert cli.json("auth", "whoami")["admin"] is True
    assert f"{email} is no longer an admin." in cli("admin", "revoke", email).stdout
    cli("auth", "login", "--email", email, "--password", "correct-horse-9")
    assert cli.json("auth", "whoami")["admin"] is False
    before = cli.state()
    unknown = cli("admin", "grant", "nobody-at-all@example.test")
    assert unknown.exit_code == 6 and "no user with email" in unknown.stderr
    assert cli("admin", "revoke", "not-an-email").exit_code == 3
    assert cli.state() == before


# one real process per command group -------------------------------------------------------
def test_every_group_as_a_real_subprocess(cli: Cli, image: Path) -> None:
    login = cli.subprocess("auth", "login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD, "--json")
    assert login.returncode == 0, login.stderr
    added = cli.subprocess(
        "cars", "add", "--make", "Hyundai", "--model", "i20", "--year", "2024", "--price", "700000",
        "--image", str(image), "--publish", "--json",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    car_id = json.loads(added.stdout)["id"]
    race = cli.subprocess("race", car_id, "--clients", "4", "--json")
    assert race.returncode == 0, race.stderr
    assert json.loads(race.stdout)["winners"] == 1
    lost = cli.subprocess("book", car_id)
    assert (lost.returncode, lost.stderr.strip()) == (7, ALREADY)
    mine = cli.subprocess("bookings", "mine", "--json")
    assert mine.returncode == 0 and json.loads(mine.stdout) == {"items": [], "next_cursor": None}
    audit = cli.subprocess("audit", "list", "--car", car_id, "--json")
    assert audit.returncode == 0 and {r["action"] for r in json.loads(audit.stdout)["items"]} >= {
        "car.insert",
        "car.booked",
    }
    grant = cli.subprocess("admin", "grant", ADMIN_EMAIL, "--json")
    assert grant.returncode == 0 and json.loads(grant.stdout)["admin"] is True
    logout = cli.subprocess("auth", "logout")
    assert logout.returncode == 0
    whoami = cli.subprocess("auth", "whoami")
    assert whoami.returncode == 12 and whoami.stderr.startswith("Error: not signed in")


def test_markup_and_huge_numbers_in_input_are_just_text(cli: Cli, image: Path) -> None:
    cli.login_admin()
    car = add_car(cli, image, "--publish")
    with stack_db(cli.stack) as conn:
        conn.execute(
            "update public.cars set make = '[/x] [bold]Tata', currency = 'XAU' where id = %s", (car["id"],)
        )
    try:
        listed = cli("cars", "show", car["id"])
    finally:  # the stack is shared: other tests read this car's price
        with stack_db(cli.stack) as conn:
            conn.execute(
                "update public.cars set currency = 'INR', is_published = false where id = %s", (car["id"],)
            )
    assert listed.exit_code == 0, listed.output
    assert "[/x] [bold]Tata" in listed.stdout and "99950 XAU (minor units)" in listed.stdout
    before = cli.state()
    booked = cli("book", "[/x]")
    assert booked.exit_code == 3 and "'[/x]'" in booked.stderr
    huge = cli(
        "cars",
        "add",
        "--make",
        "A",
        "--model",
        "B",
        "--year",
        "2024",
        "--price",
        "1" + "0" * 30,
        "--image",
        str(image),
    )
    assert huge.exit_code == 3 and "too large" in huge.stderr
    exponent = cli(
        "cars",
        "add",
        "--make",
        "A",
        "--model",
        "B",
        "--year",
        "2024",
        "--price",
        "1e30",
        "--image",
        str(image),
    )
    assert exponent.exit_code == 3 and "not an amount: '1e30'" in exponent.stderr
    assert cli.state() == before


def test_json_is_not_consent_to_destroy(cli: Cli, tmp_path: Path) -> None:
    before = cli.state()
    rollback = cli(
        "db", "rollback", "--db-url", cli.env["SUPABASE_DB_URL"], "--json", "--force",
        "--backup-dir", str(tmp_path),
    )  # fmt: skip
    assert rollback.exit_code == 1 and rollback.stdout.strip() == ""  # asked on stderr, no answer: aborted
    assert "Proceed?" in rollback.stderr
    reset = cli("stack", "reset", "--state-dir", str(cli.stack.settings.state_dir), "--json")
    assert reset.exit_code == 1 and reset.stdout.strip() == ""
    assert cli.state() == before and cli.stack.status().healthy


def test_a_non_admin_is_refused_on_every_admin_command(cli: Cli, image: Path, tmp_path: Path) -> None:
    """Signed in as a plain user, and without the secret key for `admin`: every admin
    command is refused with a clear message and changes nothing, not even the audit log."""
    cli.login_admin()
    car = add_car(cli, image)["id"]
    email = cli.login_new_user()
    csv = tmp_path / "cars.csv"
    csv.write_text(f"ref,make,model,year,price,currency,image\nNA-1,Kia,Seltos,2024,10.00,INR,{image.name}\n")
    user = Cli(cli.stack, tmp_path / "config")  # the same signed-in user, no secret key
    del user.env["SUPABASE_SECRET_KEY"]
    before = cli.state()
    refused_as_user = [
        ("cars", "update", car, "--make", "Hacked"),
        ("cars", "update", car, "--image", str(image)),
        ("cars", "update", car, "--price", "5.00"),
        ("cars", "publish", car),
        ("cars", "unpublish", car),
        ("cars", "add", "--make", "Kia", "--model", "Sonet", "--year", "2023", "--price", "1.00",
         "--currency", "INR", "--image", str(image)),
        ("cars", "import", str(csv), "--images-dir", str(image.parent)),
        ("cars", "list", "--all"),
        ("audit", "list"),
    ]  # fmt: skip
    for args in refused_as_user:
        result = user(*args)
        assert result.exit_code == 5, (args, result.output)
        assert "admins only" in result.stderr, (args, result.stderr)
    for args in (("admin", "grant", email), ("admin", "revoke", ADMIN_EMAIL)):
        result = user(*args)
        assert result.exit_code == 10, (args, result.output)
        assert "needs the secret key" in result.stderr, (args, result.stderr)
    assert cli.state() == before


def test_cars_import_names_the_real_line_past_blank_lines_and_quoted_breaks(
    cli: Cli, image: Path, tmp_path: Path
) -> None:
    cli.login_admin()
    csv_path = tmp_path / "odd.csv"
    csv_path.write_text(
        "ref,make,model,year,price,currency,image\n"  # line 1
        f"OK-1,Kia,Sonet,2023,10.00,INR,{image.name}\n"  # line 2
        "\n"  # line 3, blank
        f'CC-1,Kia,"Sonet\nGT Line",2023,10.00,INR,{image.name}\n'  # lines 4-5 (a control char)
        "\n"  # line 6, blank
        f"BAD-1,Kia,Sonet,1700,10.00,INR,{image.name}\n"  # line 7
        f'BAD-2,Kia,"Two\nLines",2023,-5,INR,{image.name}\n'  # lines 8-9
    )
    before = cli.state()
    result = cli("cars", "import", str(csv_path), "--images-dir", str(image.parent))
    assert result.exit_code == 3, result.output
    lines = [int(n) for n in re.findall(r"│\s+(\d+) │", result.stderr)]
    assert lines == [4, 7, 8], result.stderr
    assert cli.state() == before


def test_cars_update_fields_and_image_change_together_or_not_at_all(
    cli: Cli, image: Path, tmp_path: Path
) -> None:
    cli.login_admin()
    car = add_car(cli, image)
    other = tmp_path / "other.png"
    other.write_bytes(PNG + b"other")
    with stack_db(cli.stack) as conn:
        conn.execute("alter table public.cars add constraint test_no_rejected check (make <> 'Rejected')")
    try:
        before = cli.state()
        bad = cli("cars", "update", car["id"], "--make", "Rejected", "--image", str(other))
        assert bad.exit_code == 3 and "test_no_rejected" in bad.stderr, bad.output
        assert cli.state() == before  # neither the make, nor the image, nor a stray file
    finally:
        with stack_db(cli.stack) as conn:
            conn.execute("alter table public.cars drop constraint test_no_rejected")
    good = cli.json("cars", "update", car["id"], "--make", "Hyundai", "--image", str(other))
    assert good["make"] == "Hyundai" and good["image_path"] != car["image_path"]
    with stack_db(cli.stack) as conn:
        names = {r[0] for r in conn.execute("select name from storage.objects")}
    assert good["image_path"] in names and car["image_path"] not in names


@pytest.mark.parametrize("args", [("cars", "list"), ("audit", "list", "--csv"), ("--help",)])
def test_output_into_a_pipe_nobody_reads_ends_quietly(cli: Cli, args: tuple[str, ...]) -> None:
    """`carbook … | head -1`: the reader is gone before the output is. The command stops
    without a word and exits 1, whichever part of it met the closed pipe first (carbook's
    own error boundary, Rich's console, click's help)."""
    cli.login_admin()
    read, write = os.pipe()
    os.close(read)  # the reader has gone already: the first write meets a closed pipe
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "carbook_cli", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env={**os.environ, **cli.env},
        )
    finally:
        os.close(write)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""  # no "unexpected BrokenPipeError", no "Exception ignored"


@pytest.mark.parametrize("command", ["start", "stop", "status", "reset"])
def test_a_state_dir_that_is_a_file_is_named_as_such(cli: Cli, tmp_path: Path, command: str) -> None:
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("mine")
    result = cli(
        "stack", command, "--state-dir", str(not_a_folder), *(["--yes"] if command == "reset" else [])
    )
    assert result.exit_code == 10, result.output
    assert "is a file, not a folder" in result.stderr and "unexpected" not in result.stderr
    assert not_a_folder.read_text() == "mine"  # untouched


def test_signed_out_a_prefix_of_a_booked_car_says_sign_in_first(cli: Cli, image: Path) -> None:
    """A visitor sees no booked car, so its prefix would read as "no such car": the
    commands that need a user say so first, as they do for a whole id."""
    cli.login_admin()
    car = add_car(cli, image, "--publish")
    cli.login_new_user()
    assert cli("book", car["id"]).exit_code == 0
    assert cli("auth", "logout").exit_code == 0
    before = cli.state()
    for command in (("bookings", "cancel"), ("bookings", "release", "--reason", "x")):
        result = cli(*command[:2], car["id"][:8], *command[2:])
        assert result.exit_code == 12, result.output
        assert "sign in first" in result.stderr and "no car id" not in result.stderr
    assert cli.state() == before


def test_a_password_from_a_pipe_signs_in_and_none_at_all_says_how_to_give_one(cli: Cli) -> None:
    env = {**os.environ, **cli.env}
    command = [sys.executable, "-m", "carbook_cli", "auth", "login", "--email", ADMIN_EMAIL]
    piped = subprocess.run(
        command, input=f"{ADMIN_PASSWORD}\n", capture_output=True, text=True, env=env, timeout=120
    )
    assert piped.returncode == 0, piped.stderr
    assert f"Signed in as {ADMIN_EMAIL}" in piped.stdout and "Warning" not in piped.stderr
    nothing = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=120
    )
    assert nothing.returncode == 3
    assert nothing.stderr.strip().splitlines() == [
        "Error: no password given, and no terminal to ask for it on: pass --password or set CARBOOK_PASSWORD"
    ]


@pytest.mark.parametrize(
    "parts",
    [
        ["2026-12-07T01:40:32+00:00", "99999999999999999999999"],  # past a bigint
        ["2026-12-07T01:40:32+00:00", "\uff11"],  # a digit, but not an ASCII one
        ['2026-12-07",id.gt.0,created_at.lt."2030', "1"],  # filter syntax in the time
        ["yesterday", "1"],
    ],
)
def test_a_crafted_audit_cursor_is_just_not_a_cursor(cli: Cli, parts: list[str]) -> None:
    import base64

    cli.login_admin()
    cursor = base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")
    result = cli("audit", "list", "--cursor", cursor)
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("Error: not a valid page cursor"), result.stderr
    assert "bigint" not in result.stderr and "out of range" not in result.stderr


@pytest.mark.parametrize("model", ["\u202eevil", "Ne\u200bxon", "Nexon\u2066", "\ufeffNexon", "Ne\x9bxon"])
def test_invisible_or_direction_changing_characters_are_refused(cli: Cli, image: Path, model: str) -> None:
    cli.login_admin()
    before = cli.state()
    result = cli(
        "cars", "add", "--make", "Tata", "--model", model, "--year", "2024", "--price", "10.00",
        "--currency", "INR", "--image", str(image),
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "model must not contain" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert cli.state() == before


def test_a_project_url_that_is_no_url_is_named_as_such(cli: Cli) -> None:
    from typer.testing import CliRunner

    from carbook_cli import app

    env = {
        **cli.env,
        "SUPABASE_URL": "notaurl",
        "SUPABASE_PUBLISHABLE_KEY": None,
        "SUPABASE_SECRET_KEY": None,
    }
    result = CliRunner().invoke(app, ["cars", "list"], env=env)
    assert result.exit_code == 10, result.output
    assert "url: must start with http:// or https://" in result.stderr
    assert "no publishable key" not in result.stderr


def test_a_session_that_cannot_be_saved_is_said_before_signing_in(cli: Cli, tmp_path: Path) -> None:
    """A config folder that is a file: one line naming it, and no session is opened on the
    server that nobody would hold."""
    blocked = tmp_path / "config-is-a-file"
    blocked.write_text("")
    with stack_db(cli.stack) as conn:
        sessions = conn.execute("select count(*) from auth.sessions").fetchone()
    result = cli.__class__(cli.stack, blocked)(
        "auth", "login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD
    )
    assert result.exit_code == 10, result.output
    line = result.stderr.strip().splitlines()[0]
    assert line.startswith(f"Error: cannot save the session in {blocked}") and "is a file" in line, line
    assert "Realtime" not in result.stderr and "Errno" not in result.stderr
    with stack_db(cli.stack) as conn:
        assert conn.execute("select count(*) from auth.sessions").fetchone() == sessions


@pytest.mark.parametrize("args", [("cars", "list"), ("cars", "watch")])
def test_a_server_that_is_not_there_is_said_in_words(cli: Cli, args: tuple[str, ...]) -> None:
    from typer.testing import CliRunner

    from carbook_cli import app

    env = {**cli.env, "SUPABASE_URL": "http://127.0.0.1:1", "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_x"}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 4, result.output
    assert (
        "connection refused" in result.stderr
        and "Errno" not in result.stderr
        and "call failed" not in result.stderr
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("cars", "list", "--limit", "0"), "'--limit' / '-n': must be at least 1"),
        (("cars", "list", "--limit", "ten"), "'--limit' / '-n': must be a whole number"),
        (("audit", "list", "-n", "100000"), "must be at most"),
    ],
)
def test_a_bad_number_is_said_in_plain_words(cli: Cli, args: tuple[str, ...], said: str) -> None:
    result = cli(*args)
    assert result.exit_code == 3, result.output
    assert said in result.stderr and "Input should" not in result.stderr, result.stderr


def test_a_wrong_or_missing_secret_key_is_named(cli: Cli) -> None:
    cli.login_admin()
    before = cli.state()
    junk = cli("--secret-key", "junk", "admin", "grant", ADMIN_EMAIL)
    assert junk.exit_code == 10, junk.output
    assert "refused the API key" in junk.stderr and "--secret-key" in junk.stderr
    publishable = cli.env["SUPABASE_PUBLISHABLE_KEY"]
    not_secret = cli("--secret-key", publishable, "admin", "grant", ADMIN_EMAIL)
    assert not_secret.exit_code == 5, not_secret.output
    assert "needs the project's secret" in not_secret.stderr
    assert cli.state() == before
