"""supabase/config.toml is the configuration: read on every start, its edits applied by
`carbook stack restart`, and named when a running stack was started with other values."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from carbook_cli import app
from carbook_sdk.config import use_workdir
from carbook_stack.local_postgres import free_port, port_in_use
from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD

runner = CliRunner()


def _set(config: Path, section: str, key: str, value: object) -> None:
    """Change one key of one [section] in place, as a person edits the file."""
    text = config.read_text()
    start = text.index(f"[{section}]\n")
    end = text.find("\n[", start + 1)
    end = len(text) if end == -1 else end
    body, n = re.subn(rf"(?m)^{re.escape(key)} = .*$", f"{key} = {value}", text[start:end], count=1)
    assert n == 1, (section, key)
    config.write_text(text[:start] + body + text[end:])


@pytest.fixture
def project() -> Iterator[Path]:
    """A carbook project of its own on free ports, as `carbook init` makes one."""
    # Not pytest's tmp_path: PostgreSQL runs as another user when we are root and must
    # reach the folder, and pytest's base folder is private.
    base = Path(tempfile.mkdtemp(prefix="carbook-project-"))
    os.chmod(base, 0o755)
    root = base / "project"
    root.mkdir()
    assert runner.invoke(app, ["init", "--workdir", str(root)]).exit_code == 0
    config = root / "supabase" / "config.toml"
    api = free_port()
    _set(config, "api", "port", api)
    _set(config, "db", "port", free_port(avoid={api}))
    try:
        yield root
    finally:
        use_workdir(root)
        try:
            LocalStack.default().stop()
        finally:
            use_workdir(None)
            shutil.rmtree(base, ignore_errors=True)


def _cli(root: Path, *args: str) -> object:
    return runner.invoke(app, ["--workdir", str(root), *args])


def _token_lifetime(api_url: str, anon_key: str) -> int:
    reply = httpx.post(
        f"{api_url}/auth/v1/token?grant_type=password",
        headers={"apikey": anon_key},
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    claims = jwt.decode(reply.json()["access_token"], options={"verify_signature": False})
    return int(claims["exp"]) - int(claims["iat"])


def test_config_edits_take_effect_on_restart_and_are_named_until_then(project: Path) -> None:
    config = project / "supabase" / "config.toml"
    started = _cli(project, "stack", "start", "--json")
    assert started.exit_code == 0, started.output
    info = json.loads(started.stdout)
    assert _token_lifetime(info["api_url"], info["anon_key"]) == 3600

    new_api = free_port(avoid={int(info["api_url"].rsplit(":", 1)[1])})
    _set(config, "api", "port", new_api)
    _set(config, "auth", "jwt_expiry", 600)
    refused = _cli(project, "stack", "start")
    assert refused.exit_code == 10
    assert "[api].port" in refused.stderr and "[auth].jwt_expiry" in refused.stderr
    assert "carbook stack restart" in refused.stderr
    status = _cli(project, "stack", "status", "--json")
    assert status.exit_code == 0, status.output
    report = json.loads(status.stdout)
    assert set(report["config_changed"]) == {"[api].port", "[auth].jwt_expiry"}
    assert report["config_file"] == str(config.resolve())
    assert report["api_url"] == info["api_url"]  # still what runs

    restarted = _cli(project, "stack", "restart", "--json")
    assert restarted.exit_code == 0, restarted.output
    after = json.loads(restarted.stdout)
    assert after["api_url"].endswith(f":{new_api}")
    assert _token_lifetime(after["api_url"], after["anon_key"]) == 600
    assert not port_in_use(int(info["api_url"].rsplit(":", 1)[1]))
    assert json.loads(_cli(project, "stack", "status", "--json").stdout)["config_changed"] == []
    # The data survived the restart: the seeded admin signed in above, and still can.
    assert _cli(project, "stack", "start").exit_code == 0


def test_a_taken_port_names_the_key_and_changing_it_works(project: Path) -> None:
    config = project / "supabase" / "config.toml"
    text = config.read_text()
    api = int(re.search(r"(?ms)^\[api\]\n.*?^port = (\d+)", text).group(1))  # type: ignore[union-attr]
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", api))
        blocker.listen()
        taken = _cli(project, "stack", "start")
        assert taken.exit_code != 0
        assert f"port {api} is already in use" in taken.stderr and "[api].port" in taken.stderr
        _set(config, "api", "port", free_port(avoid={api}))
        started = _cli(project, "stack", "start", "--json")
    assert started.exit_code == 0, started.output
    assert not json.loads(started.stdout)["api_url"].endswith(f":{api}")


def test_status_and_stop_work_from_a_subfolder(project: Path) -> None:
    assert _cli(project, "stack", "start").exit_code == 0
    deep = project / "src" / "deep"
    deep.mkdir(parents=True)
    cwd = Path.cwd()
    os.chdir(deep)
    try:
        status = runner.invoke(app, ["stack", "status", "--json"])
        assert status.exit_code == 0, status.output
        assert json.loads(status.stdout)["healthy"] is True
        assert runner.invoke(app, ["stack", "stop"]).exit_code == 0
        down = runner.invoke(app, ["stack", "status"])
        assert down.exit_code == 11
    finally:
        os.chdir(cwd)
