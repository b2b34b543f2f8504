"""The CLI's contract with people and scripts (issue 14): one exit-code rule, JSON on every
command and for every error, one list shape, keyset paging for admins, a race that cleans
up after itself, tables that fit 80 columns, and sessions that ended saying so."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from carbook_cli import app
from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, carbook_for

from ..helpers import as_from_a_terminal, make_cars, stack_db
from .conftest import ALREADY, Cli, add_car

runner = CliRunner()
DRIVER_EMAIL, DRIVER_PASSWORD = "driver@carbook.local", "carbook-driver"
SEEDED_BOOKED_CAR = "8e5a9c8d-4b7d-4f2e-9a63-5d8e7c000008"  # supabase/seed.sql: "One car is already taken."


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# 1. One exit-code rule --------------------------------------------------------------------
ADD = ("cars", "add", "--make", "Kia", "--model", "Sonet", "--currency", "INR")


def test_every_invalid_value_exits_3_and_only_the_shape_exits_2(cli: Cli, image: Path) -> None:
    before = cli.state()
    invalid = {
        "--year twenty": ([*ADD, "--year", "twenty", "--price", "10", "--image", str(image)], "'--year'"),
        "--limit 0": (["cars", "list", "--limit", "0"], "'--limit'"),
        "--status bogus": (
            ["cars", "list", "--all", "--status", "bogus"],
            "status must be 'available' or 'booked', not 'bogus'",
        ),
        "--price abc": ([*ADD, "--year", "2023", "--price", "abc", "--image", str(image)], "abc"),
    }
    for what, (args, message) in invalid.items():
        result = cli(*args)
        assert result.exit_code == 3, (what, result.output)
        line = _one_line(result.stderr)
        assert line.startswith("Error: ") and message in line, (what, line)
        assert result.stdout == ""
        as_json = cli(*args, "--json")
        assert as_json.exit_code == 3, (what, as_json.output)
        error = json.loads(as_json.stdout)["error"]
        assert set(error) == {"code", "message", "hint"} and error["code"] == "validation_error"
        assert message in error["message"]

    unknown = cli("cars", "list", "--bogus")
    assert unknown.exit_code == 2 and "No such option: --bogus" in unknown.output
    missing = cli("book")
    assert missing.exit_code == 2 and "Missing argument" in missing.output
    both = cli("stack", "status", "--json", "--env")
    assert both.exit_code == 2 and json.loads(both.stdout)["error"]["code"] == "usage_error"
    assert cli.state() == before


# 2. JSON everywhere -------------------------------------------------------------------------
def _leaves(group: Any, prefix: str = "carbook") -> Iterator[tuple[str, Any]]:
    for name, cmd in group.commands.items():
        if isinstance(cmd, typer.core.TyperGroup):
            yield from _leaves(cmd, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", cmd


def test_every_command_takes_json() -> None:
    lacking = [
        path
        for path, cmd in _leaves(typer.main.get_command(app))
        if "--json" not in {opt for p in cmd.params for opt in getattr(p, "opts", ())}
    ]
    assert lacking == []


def test_book_json_after_a_lost_race_is_an_error_document(cli: Cli) -> None:
    cli.login_new_user()
    before = cli.state()
    lost = cli("book", SEEDED_BOOKED_CAR, "--json")
    assert lost.exit_code == 7
    assert json.loads(lost.stdout) == {"error": {"code": "already_booked", "message": ALREADY, "hint": None}}
    assert lost.stderr.strip() == ALREADY
    assert cli.state() == before


def test_lists_have_one_shape(cli: Cli) -> None:
    cli.login_admin()
    for args in (("cars", "list"), ("cars", "list", "--all"), ("bookings", "mine"), ("audit", "list")):
        data = cli.json(*args, "--limit", "2") if args[0] != "bookings" else cli.json(*args)
        assert set(data) == {"items", "next_cursor"}, args
        assert isinstance(data["items"], list), args


def test_commands_that_had_no_json(cli: Cli, db: Any, tmp_path: Path) -> None:
    cli.login_new_user()
    assert cli.json("auth", "logout")["signed_out"] is True
    seeded = cli("db", "seed", "--db-url", db.url, "--json")
    assert seeded.exit_code == 0, seeded.output
    assert json.loads(seeded.stdout)["seeded"] is True
    stopped = cli.json("stack", "stop", "--state-dir", str(tmp_path / "never-started"))
    assert stopped["stopped"] is False and stopped["parts"] == []  # nothing was running: it says so


def test_stack_status_json_has_the_same_keys_up_or_down(cli: Cli, tmp_path: Path) -> None:
    up = cli("stack", "status", "--state-dir", str(cli.stack.settings.state_dir), "--json")
    down = cli("stack", "status", "--state-dir", str(tmp_path / "never-started"), "--json")
    assert (up.exit_code, down.exit_code) == (0, 11), (up.output, down.output)
    up_doc, down_doc = json.loads(up.stdout), json.loads(down.stdout)
    assert set(up_doc) == set(down_doc) and {"api_url", "db_url", "publishable_key"} <= set(down_doc)
    assert (up_doc["healthy"], down_doc["healthy"]) == (True, False)


# 3. Keyset paging for admins ----------------------------------------------------------------
def test_list_all_pages_by_keyset_an_insert_between_pages_neither_repeats_nor_skips(
    cli: Cli,
) -> None:
    with carbook_for(cli.stack) as cb:
        cb.auth.sign_in(ADMIN_EMAIL, "carbook-admin")
        first = cb.cars.list_all(limit=3)
        assert first.next_cursor is not None
        (added,) = make_cars(cli.stack, 1, "keyset")  # between the pages
        seen = [str(c.id) for c in first.items]
        cursor: str | None = first.next_cursor
        while cursor is not None:
            page = cb.cars.list_all(limit=200, cursor=cursor)
            seen += [str(c.id) for c in page.items]
            cursor = page.next_cursor
    with stack_db(cli.stack) as conn:
        every = {r[0] for r in conn.execute("select id::text from public.cars")}
    assert len(seen) == len(set(seen))  # nothing twice
    assert set(seen) == every and added in seen  # nothing skipped, the new car included

    cli.login_admin()
    page1 = cli.json("cars", "list", "--all", "--limit", "2")
    page2 = cli.json("cars", "list", "--all", "--limit", "2", "--cursor", page1["next_cursor"])
    assert [c["id"] for c in page1["items"] + page2["items"]] == seen[:4]
    before = cli.state()
    bad = cli("cars", "list", "--all", "--cursor", "2")  # the old offset cursor
    assert bad.exit_code == 3 and _one_line(bad.stderr) == "Error: not a valid page cursor: '2'"
    newest_first = cli.json("cars", "list", "--limit", "1")["next_cursor"]
    other = cli("cars", "list", "--all", "--cursor", newest_first)  # a cursor keeps its order
    assert other.exit_code == 3 and "not a valid page cursor" in other.stderr
    back = cli("cars", "list", "--cursor", page1["next_cursor"])
    assert back.exit_code == 3 and "not a valid page cursor" in back.stderr
    assert cli.state() == before


# 4. race cleans up ----------------------------------------------------------------------------
def _racers(stack: LocalStack) -> int:
    with stack_db(stack) as conn:
        row = conn.execute("select count(*) from auth.users where email like 'racer-%'").fetchone()
    assert row is not None
    return int(row[0])


def test_race_deletes_its_users_but_the_winner_and_a_driver_loses_with_exit_7(cli: Cli, image: Path) -> None:
    cli.login_admin()
    car = add_car(cli, image, "--publish")
    # A signed-in driver races: the race's users are its own, whoever is signed in.
    assert cli("auth", "login", "--email", DRIVER_EMAIL, "--password", DRIVER_PASSWORD).exit_code == 0
    racers = _racers(cli.stack)
    data = cli.json("race", car["id"], "--clients", "2")
    assert (data["winners"], data["losers"], data["errors"]) == (1, 1, 0)
    (winner,) = [r["user"] for r in data["results"] if r["code"] == "booked"]
    assert data["kept_users"] == [winner]
    assert _racers(cli.stack) == racers + 1  # the winner's booking names them
    with stack_db(cli.stack) as conn:
        owner = conn.execute(
            "select u.email from public.cars c join auth.users u on u.id = c.booked_by where c.id = %s",
            (car["id"],),
        ).fetchone()
    assert owner == (winner,)

    before = cli.state()
    taken = cli("race", car["id"], "--clients", "2")
    assert taken.exit_code == 7, taken.output
    assert _one_line(taken.stderr) == f"Nobody won: car {car['id']} was already booked."
    assert taken.stdout.count(ALREADY) == 2
    assert cli.state() == before  # its users are gone again, and nothing else changed

    kept = cli("race", car["id"], "--clients", "2", "--keep-users", "--json")
    assert kept.exit_code == 7 and len(json.loads(kept.stdout)["kept_users"]) == 2
    assert _racers(cli.stack) == racers + 3


def test_ctrl_c_during_a_race_deletes_its_users(cli: Cli) -> None:
    """A real SIGINT to a real process, while the race is still making its users."""
    (car,) = make_cars(cli.stack, 1, "race-sigint")
    racers = _racers(cli.stack)
    proc = subprocess.Popen(
        [sys.executable, "-m", "carbook_cli", "race", car, "--clients", "100"],
        env={**os.environ, **cli.env},
        preexec_fn=as_from_a_terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while _racers(cli.stack) < racers + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, (out, err)
    assert _one_line(err) == "Interrupted: the users this race made were deleted again."
    assert _racers(cli.stack) == racers


# 5. Tables fit the terminal ---------------------------------------------------------------------
def _at_80(cli: Cli, *args: str) -> str:
    result = runner.invoke(app, list(args), env={**cli.env, "COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for line in result.stdout.splitlines():
        # A URL and a cursor stay whole on their line, to copy.
        assert len(line) <= 80 or line.startswith(("http", "More: --cursor ")), line
    return result.stdout


def test_tables_are_readable_at_80_columns(cli: Cli, image: Path) -> None:
    cli.login_admin()
    car = add_car(cli, image, "--publish")
    cli("cars", "update", car["id"], "--model", "Sonet Gravity Edition")
    # The oldest cars first: the seed's, one of them booked, one with a two-word make.
    listing = _at_80(cli, "cars", "list", "--all", "--limit", "12")
    shown = re.findall(r"│ ([0-9a-f-]{8,})… ", listing)
    ids = [c["id"] for c in cli.json("cars", "list", "--all", "--limit", "12")["items"]]
    assert len(shown) == len(ids)
    # Each shown start names its own row's car alone, so it can be typed back.
    assert all(sum(i.startswith(s) for i in ids) == 1 for s in shown)
    assert "…" not in re.sub(r"[0-9a-f-]{8,}…", "", listing)  # no word cut short, only ids
    for word in ("Maruti", "Suzuki", "Swift", "2023", "₹1,499.00", "available", "booked", "published"):
        assert word in listing, word

    audit = _at_80(cli, "audit", "list", "--car", car["id"])
    assert ADMIN_EMAIL in audit and f"{car['id'][:8]}…" in audit
    assert "…" not in re.sub(r"[0-9a-f-]{8,}…", "", audit)
    assert "car.update" in audit and "Sonet Gravity" in audit

    shown = _at_80(cli, "cars", "show", car["id"])
    url = cli.json("cars", "show", car["id"])["image_url"]
    assert url in shown.splitlines()


# 6. Sessions that ended ------------------------------------------------------------------------
def test_an_ended_session_says_so_in_whoami_and_book(cli: Cli) -> None:
    email = cli.login_new_user()
    with stack_db(cli.stack) as conn:  # what `stack reset` or a sign-out elsewhere does to it
        conn.execute(
            "delete from auth.sessions where user_id = (select id from auth.users where email = %s)", (email,)
        )
    before = cli.state()
    for args in (("auth", "whoami"), ("book", "1e5a9c1d-4b7d-4f2e-9a63-5d8e7c000001")):
        result = cli(*args)
        assert result.exit_code == 12, (args, result.output)
        line = _one_line(result.stderr)
        assert "the saved session has ended" in line and "run `carbook auth login`" in line, line
        as_json = cli(*args, "--json")
        assert as_json.exit_code == 12
        assert json.loads(as_json.stdout)["error"]["code"] == "session_expired"
    assert cli.state() == before
    assert cli("auth", "logout").exit_code == 0  # a dead session can still be forgotten
    assert _one_line(cli("auth", "whoami").stderr) == "Error: not signed in (run `carbook auth login`)"


def test_a_deleted_user_s_session_has_ended_too(cli: Cli) -> None:
    email = cli.login_new_user()
    with stack_db(cli.stack) as conn:
        conn.execute("delete from auth.users where email = %s", (email,))
    result = cli("auth", "whoami")
    assert result.exit_code == 12 and "the saved session has ended" in _one_line(result.stderr)
