"""`carbook cars watch`: a real subprocess against the stack sees the listing, then a
booking and a release made meanwhile, each once, and stops on Ctrl-C; bad input and a
stack that is down are one line and an exit code."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from carbook_stack.manager import LocalStack

from ..helpers import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    as_from_a_terminal,
    carbook_for,
    make_cars,
    make_users,
)
from .conftest import Cli


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """stdout's lines as they come (a thread: the stream never ends by itself)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _until(lines: queue.Queue[str], seen: list[dict[str, Any]], wanted: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not wanted():
        try:
            seen.append(json.loads(lines.get(timeout=max(0.01, deadline - time.monotonic()))))
        except queue.Empty:
            raise AssertionError(f"not heard in time: {seen[-5:]}") from None


def test_watch_json_shows_the_listing_then_a_booking_and_a_release_once_and_stops_on_ctrl_c(
    cli: Cli, stack: LocalStack
) -> None:
    tag = f"cliwatch-{uuid.uuid4().hex[:6]}"
    (car,) = make_cars(stack, 1, tag)
    ((_, email),) = make_users(stack, 1, tag)
    proc = subprocess.Popen(
        [sys.executable, "-m", "carbook_cli", "cars", "watch", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **cli.env},
        preexec_fn=as_from_a_terminal,
    )
    try:
        lines = _lines(proc)
        seen: list[dict[str, Any]] = []
        mine = lambda kind: [e for e in seen if e["car_id"] == car and e["kind"] == kind]  # noqa: E731
        _until(lines, seen, lambda: mine("listed"))
        listed = mine("listed")[0]
        assert listed["listed"] is True and listed["car"]["make"] == "Bench"
        assert "booked_by" not in listed["car"]  # what any visitor may know, nothing more
        with carbook_for(stack) as user:
            user.auth.sign_in(email, PASSWORD)
            user.bookings.book(car)
        _until(lines, seen, lambda: mine("booked"))
        with carbook_for(stack) as admin:
            admin.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
            admin.bookings.release(car, reason="payment failed")
        _until(lines, seen, lambda: mine("released"))
        time.sleep(0.5)  # a repeated event would arrive by now
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.stderr is not None
    err = proc.stderr.read()
    while not lines.empty():
        seen.append(json.loads(lines.get()))
    assert proc.returncode == 130, err
    assert err == "Stopped watching.\n"
    assert [e["kind"] for e in seen if e["car_id"] == car] == ["listed", "booked", "released"]
    booked, released = mine("booked")[0], mine("released")[0]
    assert (booked["listed"], booked["status"]) == (False, "booked")
    assert (released["listed"], released["status"]) == (True, "available")
    assert booked["version"] < released["version"]


def test_an_unknown_event_kind_is_one_line_exit_3_and_nothing_is_watched(cli: Cli) -> None:
    result = cli("cars", "watch", "--kind", "sold")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (
        "Error: unknown event kind 'sold': choose from listed, booked, released, published,"
        " unpublished, price_changed, unlisted (see `carbook cars watch --help`)\n"
    )
    as_json = cli("cars", "watch", "--kind", "booked", "--kind", "sold", "--json")
    assert as_json.exit_code == 3
    assert json.loads(as_json.stdout)["error"]["code"] == "validation_error"


def test_watching_a_stack_that_is_down_is_one_line_and_exit_4(cli: Cli) -> None:
    # Nothing listens on port 1: the stack is down (or the URL wrong).
    env = {**cli.env, "SUPABASE_URL": "http://127.0.0.1:1"}
    proc = subprocess.run(
        [sys.executable, "-m", "carbook_cli", "cars", "watch"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("Error: could not reach Realtime at http://127.0.0.1:1")
    assert line.endswith("(Is the stack running? `carbook stack start` starts the local one.)")
