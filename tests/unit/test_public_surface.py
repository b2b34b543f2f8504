"""The public surface of carbook_sdk is three lists in __init__.py (the type checker's
imports, the lazy map, __all__): they must agree, and every public exception is in them."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import carbook_sdk
from carbook_sdk import errors

INIT = Path(carbook_sdk.__file__)


def _type_checking_names() -> set[str]:
    tree = ast.parse(INIT.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    names |= {a.asname or a.name for a in stmt.names}
    return names


def test_all_the_lazy_map_and_the_type_checking_imports_agree() -> None:
    public = set(carbook_sdk.__all__) - {"__version__"}
    assert set(carbook_sdk._LAZY) == public
    assert _type_checking_names() == public
    for name in public:
        assert getattr(carbook_sdk, name) is not None, name


def test_every_public_exception_is_exported() -> None:
    classes = {
        name
        for name, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.CarbookError) and obj.__module__ == errors.__name__
    }
    assert classes == set(errors.__all__)
    assert classes <= set(carbook_sdk.__all__)
