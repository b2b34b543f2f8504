"""Every command and option has help, and the CLI reference (docs/cli.md) documents every command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import typer

from carbook_cli import app

CLI_DOCS = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()


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


def test_the_cli_docs_list_every_command() -> None:
    """Each command has its own row in the CLI section's table (`carbook book` is not
    satisfied by `carbook bookings mine`)."""
    section = CLI_DOCS.split("\n## ", 1)[0]  # the page's first part: the command table
    rows = set(re.findall(r"^\| `(carbook [a-z -]+)` \|", section, flags=re.M))
    leaves = {p for p, cmd in COMMANDS if not isinstance(cmd, typer.core.TyperGroup)}
    assert leaves - rows == set()
    assert rows - leaves == set()  # and no row for a command that does not exist


#: What `carbook --help` must not load. The SDK's dependencies: the commands import the
#: SDK lazily. Rich's Markdown and Traceback (markdown-it, Pygments): Typer's help module
#: imports them, carbook's help never uses them (`rich_help.py`). `json`: only `--json`
#: output needs it.
HEAVY_FOR_HELP = (
    "supabase",
    "httpx",
    "psycopg",
    "pydantic",
    "postgrest",
    "storage3",
    "carbook_sdk._async",
    "carbook_sdk.config",
    "rich.markdown",
    "rich.traceback",
    "rich.syntax",
    "rich.progress",
    "markdown_it",
    "pygments",
    "json",
)


def _loaded_after(args: list[str], heavy: tuple[str, ...]) -> list[str]:
    code = (
        "import sys\n"
        "from carbook_cli.main import main\n"
        f"sys.argv = ['carbook', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return eval(result.stderr.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_help_imports_none_of_the_heavy_packages() -> None:
    """`carbook --help` stays fast (shell completion runs it on every Tab)."""
    assert _loaded_after(["--help"], HEAVY_FOR_HELP) == []
    assert _loaded_after([], HEAVY_FOR_HELP) == []  # no arguments: the same help


def test_importing_the_commands_loads_no_rich() -> None:
    """Consoles, markup and tables load when a command first prints, not on import."""
    code = "import sys, carbook_cli.main\nprint(sorted(m for m in sys.modules if m.startswith('rich')))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_light_help_looks_exactly_like_typers_own() -> None:
    """The console script's help (Typer's help module loaded with stand-ins) is the same
    text as Typer's help loaded as is (in this process, through CliRunner)."""
    from typer.testing import CliRunner

    runner = CliRunner()
    for args in (["--help"], ["cars", "import", "--help"], ["db", "--help"]):
        script = subprocess.run(
            [str(Path(sys.executable).with_name("carbook")), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert script.returncode == 0, script.stderr
        assert script.stdout == runner.invoke(app, args).output, args
