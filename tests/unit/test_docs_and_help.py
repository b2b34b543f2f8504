"""Every command and option has help, and the README documents every command."""

from __future__ import annotations

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
    leaves = [p for p, cmd in COMMANDS if not isinstance(cmd, typer.core.TyperGroup)]
    assert [p for p in leaves if f"`{p}" not in README] == []
