"""As root (CI, containers), the stack starts in a project PostgreSQL's user cannot reach:
under /root, or in a mode-0700 folder such as pytest's and `mktemp -d`'s."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import httpx
import pytest

from carbook_stack.local_postgres import cluster_dir, free_port
from tests.helpers import carbook_in


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user (CI runs as root)")
def test_root_in_a_private_folder_starts_serves_and_resets(tmp_path: Path) -> None:
    project = tmp_path / "private"
    project.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o700)
    assert stat.S_IMODE(project.stat().st_mode) == 0o700
    assert carbook_in(project, "init").returncode == 0
    config = project / "supabase" / "config.toml"
    api, db = free_port(), free_port()
    text = re.sub(r"(?m)^port = 54321$", f"port = {api}", config.read_text())
    config.write_text(re.sub(r"(?m)^port = 54322$", f"port = {db}", text))
    elsewhere = cluster_dir(project / ".carbook")
    assert not str(elsewhere).startswith(str(project))  # postgres cannot reach the project
    try:
        started = carbook_in(project, "stack", "start", "--json")
        assert started.returncode == 0, started.stderr
        info = json.loads(started.stdout)
        reply = httpx.get(
            f"{info['api_url']}/rest/v1/cars?select=id&limit=1", headers={"apikey": info["publishable_key"]}
        )
        assert reply.status_code == 200 and reply.json(), reply.text
        status = json.loads(carbook_in(project, "stack", "status", "--json").stdout)
        database = next(p for p in status["parts"] if p["name"] == "database")
        assert database["healthy"] and database["log"].startswith(str(elsewhere))  # shown by status
        assert (elsewhere / "pgdata" / "PG_VERSION").is_file()
        reset = carbook_in(project, "stack", "reset", "--yes")
        assert reset.returncode == 0, reset.stderr
        assert (elsewhere / "pgdata" / "PG_VERSION").is_file()  # made again, in the same place
    finally:
        carbook_in(project, "stack", "stop")
        shutil.rmtree(elsewhere, ignore_errors=True)
    assert not (project / ".carbook" / "db" / "pgdata").exists()
