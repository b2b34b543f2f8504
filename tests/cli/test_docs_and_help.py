"""Every command and option has help, and the README documents every command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import typer

from carbook_cli import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _commands(group: typer.core.TyperGroup, prefix: str = "carbook") -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name, cmd in group.commands.items():
        path = f"{prefix} {name}"
        found.append((path, cmd))
        if isinstance(cmd, typer.core.TyperGroup):
            found.extend(_commands(cmd, path))
    return found


COMMANDS = _commands(typer.main.get_command(app))  # type: ignore[arg-type]


def test_there_are_commands() -> None:
    assert {"carbook db", "carbook db migrate", "carbook db rollback"} <= {p for p, _ in COMMANDS}


def test_every_command_and_parameter_has_help() -> None:
    missing = []
    for path, cmd in COMMANDS:
        if not (getattr(cmd, "help", None) or "").strip():
            missing.append(path)
        for param in getattr(cmd, "params", []):
            if not (getattr(param, "help", None) or "").strip():
                missing.append(f"{path} {param.name}")
    assert missing == []


def test_readme_lists_every_command() -> None:
    """Each command has its own row in the CLI section's table (`carbook book` is not
    satisfied by `carbook bookings mine`)."""
    section = README.split("\n## CLI", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `(carbook [a-z -]+)` \|", section, flags=re.M))
    leaves = {p for p, cmd in COMMANDS if not isinstance(cmd, typer.core.TyperGroup)}
    assert leaves - rows == set()
    assert rows - leaves == set()  # and no row for a command that does not exist


def test_help_imports_none_of_the_heavy_packages() -> None:
    """`carbook --help` stays fast because the commands import the SDK lazily."""
    code = (
        "import sys\n"
        "from carbook_cli.main import main\n"
        "sys.argv = ['carbook', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('supabase', 'httpx', 'psycopg', 'pydantic', 'postgrest', 'storage3', 'carbook_sdk._async')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"
