"""carbook as a user installs it: the wheel, in fresh virtualenvs, used from an empty folder.

- the base install is the SDK alone: it talks to a real stack, and has none of the CLI's,
  the ops API's or the local stack's dependencies;
- ``carbook[all]`` gives the whole CLI, whose db commands find the packaged migrations.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbook_stack.local_postgres import free_port
from carbook_stack.manager import LocalStack

from .helpers import Db

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

#: What the base install must not bring: the CLI's, the ops API's and the stack's dependencies.
NOT_IN_BASE = (
    "typer",
    "rich",
    "starlette",
    "uvicorn",
    "bcrypt",
    "psycopg",
    "psycopg_pool",
    "python_multipart",
)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="carbook-wheel-"))
    # The local stack's PostgreSQL runs as another user when we are root: let it in.
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def wheel(workdir: Path) -> Path:
    out = workdir / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (found,) = out.glob("carbook-*.whl")
    return found


def _venv(workdir: Path, name: str, requirement: str) -> Path:
    env_dir = workdir / name
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=120)
    subprocess.run(
        [
            str(env_dir / "bin/python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            requirement,
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return env_dir


def _run(env_dir: Path, args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("CARBOOK_", "SUPABASE_", "VIRTUAL_ENV"))
    }
    clean["PATH"] = f"{env_dir / 'bin'}:{clean.get('PATH', '')}"
    return subprocess.run(args, cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=120)


@pytest.fixture
def empty_folder(workdir: Path) -> Path:
    folder = Path(tempfile.mkdtemp(dir=workdir, prefix="empty-"))
    os.chmod(folder, 0o755)
    return folder


@pytest.fixture(scope="module")
def all_env(wheel: Path, workdir: Path) -> Path:
    """A fresh virtualenv with ``carbook[all]`` from the wheel."""
    return _venv(workdir, "all", f"carbook[all] @ {wheel.as_uri()}")


def test_the_base_install_is_the_sdk_alone(
    wheel: Path, workdir: Path, stack: LocalStack, empty_folder: Path
) -> None:
    env_dir = _venv(workdir, "base", str(wheel))
    script = f"""
import importlib.util, json
import carbook_sdk
from carbook_sdk import Carbook, ConfigurationError
missing = {{m: importlib.util.find_spec(m) is None for m in {NOT_IN_BASE!r}}}
with Carbook({stack.settings.api_url!r}, {stack.settings.publishable_key!r}) as cb:
    page = cb.cars.list_available(limit=5)
try:
    import carbook_sdk.ops
    ops = "imported"
except ConfigurationError as exc:
    ops = str(exc)
print(json.dumps({{"missing": missing, "cars": len(page.items), "ops": ops}}))
"""
    result = _run(env_dir, [str(env_dir / "bin/python"), "-c", script], empty_folder)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert all(report["missing"].values()), report["missing"]
    assert report["cars"] >= 1  # the seeded stack lists published cars to anyone
    assert 'pip install "carbook[ops]"' in report["ops"]
    # The console script exists in every install; without the cli extra it says what to do.
    cli = _run(env_dir, [str(env_dir / "bin/carbook"), "--help"], empty_folder)
    assert cli.returncode == 10
    assert cli.stderr.strip().count("\n") == 0, cli.stderr
    assert 'pip install "carbook[cli]"' in cli.stderr and "Traceback" not in cli.stderr


def test_the_all_install_is_the_whole_cli_from_an_empty_folder(
    all_env: Path, empty_db: Db, stack: LocalStack, empty_folder: Path
) -> None:
    env_dir = all_env
    carbook = str(env_dir / "bin/carbook")
    helped = _run(env_dir, [carbook, "--help"], empty_folder)
    assert helped.returncode == 0, helped.stderr
    for command in ("stack", "cars", "book", "race", "db", "auth", "audit", "admin", "bookings"):
        assert command in helped.stdout
    stack_help = _run(env_dir, [carbook, "stack", "--help"], empty_folder)
    assert stack_help.returncode == 0 and "start" in stack_help.stdout
    # A new project from the packaged files, then its migrations applied.
    outside = _run(env_dir, [carbook, "db", "migrate", "--db-url", empty_db.url], empty_folder)
    assert outside.returncode == 10 and "carbook init" in outside.stderr
    initialised = _run(env_dir, [carbook, "init"], empty_folder)
    assert initialised.returncode == 0, initialised.stderr
    assert (empty_folder / "supabase" / "images" / "sample-car.png").is_file()
    migrated = _run(env_dir, [carbook, "db", "migrate", "--db-url", empty_db.url, "--json"], empty_folder)
    assert migrated.returncode == 0, migrated.stderr
    assert len(json.loads(migrated.stdout)["applied"]) >= 5
    verified = _run(env_dir, [carbook, "db", "verify", "--db-url", empty_db.url, "--failed"], empty_folder)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    listed = _run(
        env_dir,
        [
            carbook,
            "--url",
            stack.settings.api_url,
            "--publishable-key",
            stack.settings.publishable_key,
            "cars",
            "list",
            "--json",
        ],
        empty_folder,
        CARBOOK_CONFIG_DIR=str(empty_folder / "config"),
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["items"]


def _set_port(config: Path, section: str, port: int) -> None:
    text = config.read_text()
    start = text.index(f"[{section}]\n")
    head, rest = text[:start], text[start:]
    config.write_text(head + re.sub(r"(?m)^port = \d+$", f"port = {port}", rest, count=1))


def test_the_main_job_from_an_installed_wheel(all_env: Path, workdir: Path, empty_folder: Path) -> None:
    """pip install, carbook init, carbook stack start, and the README's main job, from an
    empty folder, with PostgREST installed on first start into a cache of its own."""
    carbook = str(all_env / "bin/carbook")
    env = {
        "CARBOOK_TOOLS_DIR": str(workdir / "tools-cache"),
        "CARBOOK_CONFIG_DIR": str(empty_folder / ".config"),
    }

    def run(*args: str, cwd: Path = empty_folder) -> subprocess.CompletedProcess[str]:
        result = _run(all_env, [carbook, *args], cwd, **env)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    run("init")
    config = empty_folder / "supabase" / "config.toml"
    api = free_port()
    _set_port(config, "api", api)
    _set_port(config, "db", free_port(avoid={api}))
    try:
        started = run("stack", "start")
        assert "Installing PostgREST" in started.stderr
        assert f"http://127.0.0.1:{api}" in started.stdout
        run("db", "verify", "--failed")
        run("auth", "login", "--email", "admin@carbook.local", "--password", "carbook-admin")
        car = json.loads(
            run(
                "cars", "add", "--make", "Tata", "--model", "Nexon EV", "--year", "2024",
                "--price", "1499.00", "--currency", "INR", "--image", "supabase/images/sample-car.png", "--json",
            ).stdout
        )  # fmt: skip
        run("cars", "publish", car["id"])
        race = json.loads(run("race", car["id"], "--clients", "10", "--json").stdout)
        assert (race["winners"], race["losers"], race["errors"]) == (1, 9, 0)
        deep = empty_folder / "app" / "src"
        deep.mkdir(parents=True)
        run("stack", "stop", cwd=deep)
        down = _run(all_env, [carbook, "stack", "status"], deep, **env)
        assert down.returncode == 11
    finally:
        _run(all_env, [carbook, "stack", "stop"], empty_folder, **env)
    left = subprocess.run(["pgrep", "-af", str(empty_folder)], capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout
