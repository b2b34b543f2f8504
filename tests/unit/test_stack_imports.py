"""carbook_stack uses only public names of carbook_sdk and nothing of carbook_cli.

The stack is a separate import package on purpose: if it reached into the SDK's private
modules, a refactor there would break it silently; if it imported the CLI, the stack
extra would drag in Typer and Rich. Read from the source with ``ast``, so nothing is run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STACK = Path(__file__).resolve().parents[2] / "src" / "carbook_stack"
IMPORTERS = {"import_module", "__import__"}


def _private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def _check_module(module: str, names: list[str], where: str) -> list[str]:
    top = module.split(".")[0]
    if top == "carbook_cli":
        return [f"{where}: imports {module} (the stack must not depend on the CLI)"]
    if top != "carbook_sdk":
        return []
    found = []
    if _private(module):
        found.append(f"{where}: imports private module {module}")
    found += [f"{where}: imports private name {module}.{n}" for n in names if n.startswith("_")]
    return found


def forbidden_imports(source: str, filename: str = "<string>") -> list[str]:
    """Each import in ``source`` of a private part of carbook_sdk, or of carbook_cli."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                found += _check_module(alias.name, [], where)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += _check_module(node.module, [a.name for a in node.names], where)
        elif (
            isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) in IMPORTERS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            # importlib.import_module("carbook_sdk._x") is an import too.
            found += _check_module(node.args[0].value, [], where)
    return found


def _stack_files() -> list[Path]:
    files = sorted(STACK.rglob("*.py"))
    assert len(files) > 10, f"no stack sources under {STACK}"
    return files


def test_the_stack_imports_only_public_sdk_names_and_never_the_cli() -> None:
    problems = [
        p for f in _stack_files() for p in forbidden_imports(f.read_text(), str(f.relative_to(STACK)))
    ]
    assert problems == []


def test_the_check_sees_the_stacks_sdk_imports() -> None:
    """Not vacuous: the stack does import the SDK, and the walk reaches those imports."""
    sdk_imports = [
        node
        for f in _stack_files()
        for node in ast.walk(ast.parse(f.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("carbook_sdk")
    ]
    assert len(sdk_imports) >= 3


@pytest.mark.parametrize(
    "source",
    [
        "from carbook_sdk._base import x",
        "from carbook_sdk import _translate",
        "from carbook_sdk.ops import _private_helper",
        "import carbook_sdk._sync.client",
        "from carbook_sdk._sync import client",
        "import carbook_cli",
        "from carbook_cli.main import app",
        "def f():\n    from carbook_sdk.config import _hidden\n",
        "import importlib\nimportlib.import_module('carbook_sdk._translate')",
        "__import__('carbook_cli.output')",
    ],
)
def test_the_check_flags_private_sdk_and_cli_imports(source: str) -> None:
    assert len(forbidden_imports(source)) == 1


@pytest.mark.parametrize(
    "source",
    [
        "import carbook_sdk",
        "from carbook_sdk import Carbook, CarbookError",
        "from carbook_sdk.config import parse_size",
        "from carbook_sdk.errors import CarbookError as _Error",
        "from . import gateway\nfrom ._private import x\nfrom .._x import y",
        "import importlib\nimportlib.import_module('.manager', 'carbook_stack')",
        "import _thread\nfrom __future__ import annotations",
    ],
)
def test_the_check_lets_public_and_own_imports_pass(source: str) -> None:
    assert forbidden_imports(source) == []
