"""The stack heals: after its database restarts (cleanly or killed), `stack start` brings
it back and the running app serves again without a single error; what a killed
app left in storage is cleaned up at the next start."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from carbook_stack.manager import LocalStack
from carbook_stack.processes import pid_alive
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PNG, supabase_client

from ..helpers import stack_db, temporary_stack

BUCKET = "car-images"


@pytest.fixture(scope="module")
def healing() -> Iterator[LocalStack]:
    """A stack of this module's own: its tests stop and kill its database."""
    with temporary_stack("carbook-heal-") as stack:
        yield stack


def _app_pid(stack: LocalStack) -> int:
    pid = {p.name: p.pid for p in stack.status().parts}["app"]
    assert pid is not None
    return pid


def _traffic(stack: LocalStack, token: str, rounds: int) -> list[str]:
    """Auth and Storage calls over kept-alive connections: what went wrong, if anything."""
    s = stack.settings
    headers = {"apikey": s.publishable_key, "Authorization": f"Bearer {token}"}
    errors: list[str] = []
    with httpx.Client(base_url=s.api_url, headers=headers, timeout=10) as client:
        for i in range(rounds):
            reply = (
                client.get("/auth/v1/user")
                if i % 2 == 0
                else client.post(f"/storage/v1/object/list/{BUCKET}", json={"prefix": "seed", "limit": 5})
            )
            if reply.status_code != 200:
                errors.append(f"{reply.request.url.path}: {reply.status_code} {reply.text[:120]}")
    return errors


def _admin_token(stack: LocalStack) -> str:
    client = supabase_client(stack.settings.api_url, stack.settings.publishable_key)
    session = client.auth.sign_in_with_password({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).session
    assert session is not None
    return str(session.access_token)


def test_after_a_database_restart_the_running_app_serves_without_errors(healing: LocalStack) -> None:
    healing.start()
    token = _admin_token(healing)
    assert _traffic(healing, token, 20) == []  # the pool now holds connections
    app = _app_pid(healing)
    healing.postgres.stop()
    # Down, it is reported down, and the app's health says so rather than "ok".
    parts = {p.name: p for p in healing.status().parts}
    assert parts["database"].healthy is False and parts["app"].healthy is False
    health = httpx.get(
        f"{healing.settings.api_url}/auth/v1/health", params={"apikey": healing.settings.anon_key}
    )
    assert health.status_code == 503
    healing.start()
    assert healing.status().healthy
    assert _app_pid(healing) == app  # the same app: its pool healed itself
    assert _traffic(healing, token, 200) == []


def test_a_killed_postmaster_is_started_again_at_the_first_try(healing: LocalStack) -> None:
    healing.start()
    pid = healing.postgres.postmaster_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(pid)
    assert not healing.postgres.is_running()  # whatever pg_ctl says of a zombie
    healing.start()
    status = healing.status()
    assert status.healthy, status
    assert healing.postgres.postmaster_pid() != pid
    assert _traffic(healing, _admin_token(healing), 20) == []


def test_start_removes_what_a_killed_app_left_in_storage(healing: LocalStack) -> None:
    healing.start()
    admin = supabase_client(healing.settings.api_url, healing.settings.secret_key)
    name = f"heal/{uuid.uuid4().hex}.png"
    admin.storage.from_(BUCKET).upload(name, PNG, {"content-type": "image/png"})
    objects = healing.settings.storage_dir / "objects"
    with stack_db(healing) as conn:
        kept: Any = {str(v) for (v,) in conn.execute("select version from storage.objects").fetchall()}
    os.kill(_app_pid(healing), signal.SIGKILL)
    # What an app killed mid-upload leaves: a temporary file, and bytes whose row never committed.
    (objects / f".upload-{uuid.uuid4()}").write_bytes(b"half an upload")
    (objects / str(uuid.uuid4())).write_bytes(PNG)
    lines: list[str] = []
    healing.progress = lines.append
    try:
        healing.start()
    finally:
        healing.progress = None
    assert {f.name for f in objects.iterdir()} == kept
    assert any("removed 1 unfinished upload(s) and 1 file(s)" in line for line in lines), lines
    assert "removed 1 unfinished upload(s)" in healing.app.log.read_text()
    # Every object still downloads: nothing a row names was touched.
    assert admin.storage.from_(BUCKET).download(name) == PNG


def _book_under_load(
    stack: LocalStack, token: str, car: str, stop: threading.Event, replies: list[str]
) -> None:
    """Booking calls through the API port until ``stop``: each reply as "status body"."""
    s = stack.settings
    headers = {"apikey": s.publishable_key, "Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=s.api_url, headers=headers, timeout=15) as client:
        while not stop.is_set():
            try:
                reply = client.post("/rest/v1/rpc/book_car_atomic", json={"car_id": car})
                replies.append(f"{reply.status_code} {reply.text[:160]}")
            except httpx.TransportError as e:
                replies.append(f"{type(e).__name__}")


def test_a_database_killed_under_load_costs_callers_503s_never_a_refused_connection(
    healing: LocalStack,
) -> None:
    """`stack start` after the postmaster was killed starts PostgreSQL again and lets the
    running parts reconnect: PostgREST, the app and nginx keep their processes, so the API
    port never refuses a caller; a booking meanwhile answers 200 or 503 with a JSON body."""
    healing.start()
    token = _admin_token(healing)
    with stack_db(healing) as conn:
        row = conn.execute("select id::text from public.cars order by id limit 1").fetchone()
    assert row is not None
    before = {p.name: p.pid for p in healing.status().parts if p.name != "database"}
    stop, replies = threading.Event(), list[str]()
    args = (healing, token, row[0], stop, replies)
    callers = [threading.Thread(target=_book_under_load, args=args) for _ in range(4)]
    for caller in callers:
        caller.start()
    try:
        time.sleep(0.5)
        pid = healing.postgres.postmaster_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
        healing.start()
        time.sleep(0.5)
    finally:
        stop.set()
        for caller in callers:
            caller.join()
    after = {p.name: p.pid for p in healing.status().parts if p.name != "database"}
    assert after == before  # only the database was started again
    statuses = {r.split(" ", 1)[0] for r in replies}
    assert "200" in statuses and "503" in statuses, statuses  # the kill landed, and it healed
    # A 503 names its cause (PGRST00x, or 57P01 for connections the shutdown ended).
    wrong = [r for r in replies if not re.match(r'(200 |503 \{"code":"[0-9A-Z]{5,8}")', r)]
    assert wrong == [], wrong[:5]
