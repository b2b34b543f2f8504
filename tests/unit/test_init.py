"""`carbook init` and project discovery, as a user meets them: folders, files, messages."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carbook_cli import app
from carbook_sdk.config import find_project, packaged_dir, use_workdir

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_workdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("CARBOOK_WORKDIR", "SUPABASE_WORKDIR"):
        monkeypatch.delenv(var, raising=False)
    yield
    use_workdir(None)


def _tree(root: Path) -> dict[str, str]:
    """Every file under root, by relative path, with a hash of its bytes."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _init(*args: str) -> object:
    return runner.invoke(app, ["init", *args])


def test_init_makes_a_project_that_commands_find_from_any_subfolder(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("node_modules/")  # no newline at the end
    result = _init("--workdir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    packaged = _tree(packaged_dir())
    assert sorted(report["created"]) == sorted(f"supabase/{k}" for k in packaged)
    assert report["replaced"] == [] and report["gitignore_updated"] is True
    assert (tmp_path / ".gitignore").read_text() == "node_modules/\n.carbook/\n"
    for rel, digest in packaged.items():
        assert _tree(tmp_path / "supabase")[rel] == digest
    deep = tmp_path / "src" / "app"
    deep.mkdir(parents=True)
    assert find_project(deep) == tmp_path.resolve()
    again = _init("--workdir", str(tmp_path))
    assert again.exit_code == 0 and "Nothing to do" in again.stdout
    assert (tmp_path / ".gitignore").read_text().count(".carbook/") == 1


def test_init_refuses_to_replace_files_and_changes_nothing(tmp_path: Path) -> None:
    assert _init("--workdir", str(tmp_path)).exit_code == 0
    config = tmp_path / "supabase" / "config.toml"
    config.write_text(config.read_text().replace("port = 54321", "port = 64321"))
    before = _tree(tmp_path)
    refused = _init("--workdir", str(tmp_path))
    assert refused.exit_code == 3
    assert "would replace supabase/config.toml" in refused.stderr and "--force" in refused.stderr
    assert refused.stderr.strip().count("\n") == 0 and "Traceback" not in refused.stderr
    assert _tree(tmp_path) == before
    forced = _init("--workdir", str(tmp_path), "--force", "--json")
    assert forced.exit_code == 0
    assert json.loads(forced.stdout)["replaced"] == ["supabase/config.toml"]
    assert "port = 54321" in config.read_text()


def test_a_supabase_project_gets_carbooks_migrations_beside_its_own(tmp_path: Path) -> None:
    own = tmp_path / "supabase"
    (own / "migrations").mkdir(parents=True)
    (own / "config.toml").write_text('project_id = "theirs"\n[api]\nport = 55555\n')
    (own / "migrations" / "20240101000000_their_table.sql").write_text("create table t (id int);\n")
    (own / "migrations" / "20260101000000_later.sql").write_text("select 1;\n")
    (own / "seed.sql").write_text("-- their seed\n")
    before = _tree(tmp_path)
    result = _init("--workdir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["replaced"] == []
    assert len(report["added_beside"]) == len(list((packaged_dir() / "migrations").glob("*.sql")))
    after = _tree(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing of theirs changed
    names = sorted(p.name for p in (own / "migrations").glob("*.sql"))
    assert names[0] == "20240101000000_their_table.sql" and names[-1] == "20260101000000_later.sql"
    assert "20250916010000_atomic_booking_implementation.sql" in names


def test_init_into_a_path_that_is_not_a_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = _init("--workdir", str(missing))
    assert result.exit_code == 3 and "is not a folder" in result.stderr
    assert not missing.exists()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert _init("--workdir", str(a_file)).exit_code == 3
    assert a_file.read_text() == "x"


def test_commands_outside_a_project_say_what_to_do(tmp_path: Path) -> None:
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        result = runner.invoke(app, ["db", "migrate", "--db-url", "postgresql://u@127.0.0.1:1/x"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 10
    assert "no carbook project here" in result.stderr and "carbook init" in result.stderr
    bad = runner.invoke(app, ["--workdir", str(tmp_path / "nowhere"), "db", "status"])
    assert bad.exit_code == 10 and "is not a folder" in bad.stderr
    not_project = runner.invoke(app, ["--workdir", str(tmp_path), "db", "status"])
    assert not_project.exit_code == 10
    assert "not a carbook project" in not_project.stderr and "carbook init --workdir" in not_project.stderr


def test_a_malformed_config_names_the_file_and_line(tmp_path: Path) -> None:
    assert _init("--workdir", str(tmp_path)).exit_code == 0
    config = tmp_path / "supabase" / "config.toml"
    config.write_text("[api]\nport = 54321\nthis is not toml\n")
    result = runner.invoke(app, ["--workdir", str(tmp_path), "cars", "list"])
    assert result.exit_code == 10
    assert str(config) in result.stderr and "line 3" in result.stderr
