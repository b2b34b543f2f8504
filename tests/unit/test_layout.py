"""The test suite's own layout rules: no test module imports another (shared helpers
live in a conftest.py or tests/helpers.py)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_module_imports_another() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("test_*.py")):
        if "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                last = node.module.rsplit(".", 1)[-1]
                if last.startswith("test_"):
                    offenders.append(f"{path.relative_to(TESTS)} imports {node.module}")
            elif isinstance(node, ast.Import):
                offenders += [
                    f"{path.relative_to(TESTS)} imports {a.name}"
                    for a in node.names
                    if a.name.rsplit(".", 1)[-1].startswith("test_")
                ]
    assert offenders == []


def test_no_module_of_the_packages_imports_a_private_name_of_another() -> None:
    root = TESTS.parent
    offenders = []
    for folder in (root / "src", root / "cli"):
        for path in sorted(folder.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    offenders += [
                        f"{path.relative_to(root)}: {a.name} from {node.module}"
                        for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")
                    ]
    assert offenders == []


def test_no_hand_written_module_is_past_its_seam() -> None:
    """A module holds one idea; past about 500 lines, it has a seam to cut along (the
    generated ``_sync/`` twins are as long as their ``_async/`` sources)."""
    root = TESTS.parent
    long = [
        f"{path.relative_to(root)}: {lines} lines"
        for folder in (root / "src", root / "cli")
        for path in sorted(folder.rglob("*.py"))
        if "_sync" not in path.parts and (lines := len(path.read_text().splitlines())) > 520
    ]
    assert long == []


def test_the_cli_names_environment_variables_from_the_one_module() -> None:
    """Every ``envvar=`` of a CLI option comes from ``carbook_sdk.env``: a variable typed
    into one command by hand would drift from the one the SDK and the docs name."""
    cli = TESTS.parent / "cli" / "carbook_cli"
    typed = [
        f"{path.name}:{node.lineno}"
        for path in sorted(cli.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.keyword)
        and node.arg == "envvar"
        and isinstance(node.value, ast.Constant | ast.List)
    ]
    assert typed == []
